/*
 * smaug-plugin-server - the protection plugin for smaug.server, the server
 * descriptors of the sample cloud (servers/<id>.json: volumes, image,
 * network).
 *
 * Its children are its volumes and its image (ListDependents). Protect's
 * Parallel saves the descriptor into the bank in a job; there is no work
 * that depends on the children, so Sync is the SDK's wait for that job.
 * Restore runs in Sync because it depends on the children's results: the
 * descriptor is re-created under the restored id against the children's
 * *restored* volume and image ids (and network id, when the network was
 * restored as a child too). Delete removes the section and collects
 * unused chunks.
 */
#include "sp_cloud.h"
#include "sp_ops.h"
#include "sp_store.h"

#include <jansson.h>
#include <smaug/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TYPE   "smaug.server"
#define OBJECT "server.json"

static const char schema[] =
    "{\n"
    "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
    "  \"title\": \"smaug.server parameters\",\n"
    "  \"type\": \"object\",\n"
    "  \"properties\": {\n" SP_SCHEMA_COMMON_PROPS "  }\n"
    "}\n";

/* Loads a server descriptor: a JSON object whose volumes are strings. */
static json_t *load_descriptor(const char *text, size_t len, const char *what,
                               char *msg, size_t msglen) {
  json_error_t je;
  json_t *doc = json_loadb(text, len, 0, &je);
  if (!json_is_object(doc)) {
    sp_msg(msg, msglen, "%s is not a JSON object: %s", what, je.text);
    json_decref(doc);
    return NULL;
  }
  json_t *vols = json_object_get(doc, "volumes"), *v;
  size_t i;
  if (vols != NULL && !json_is_array(vols)) {
    sp_msg(msg, msglen, "%s: volumes is not an array", what);
    json_decref(doc);
    return NULL;
  }
  json_array_foreach(vols, i, v) {
    if (!json_is_string(v) || sp_check_id(json_string_value(v)) != 0) {
      sp_msg(msg, msglen, "%s: volumes[%zu] is not a valid id", what, i);
      json_decref(doc);
      return NULL;
    }
  }
  const char *keys[] = {"image", "network"};
  for (int k = 0; k < 2; k++) {
    json_t *s = json_object_get(doc, keys[k]);
    if (s != NULL &&
        (!json_is_string(s) || sp_check_id(json_string_value(s)) != 0)) {
      sp_msg(msg, msglen, "%s: %s is not a valid id", what, keys[k]);
      json_decref(doc);
      return NULL;
    }
  }
  return doc;
}

static int list_dependents(smaug_dependents_t *deps, void *data) {
  sp_req_t r;
  char msg[256], *text = NULL;
  size_t len = 0;
  int err = sp_deps_init(&r, deps, data, "servers", ".json");
  if (err != 0)
    return err;
  if ((err = sp_read_file(r.path, SP_MAX_DESCRIPTOR, &text, &len)) != 0)
    return smaug_dependents_fail(deps, err == SMAUG_ENOENT ? err : SMAUG_EBUSY,
                                 "server descriptor %s: %s", r.path,
                                 smaug_strerror(err));
  json_t *doc = load_descriptor(text, len, r.path, msg, sizeof(msg));
  free(text);
  if (doc == NULL)
    return smaug_dependents_fail(deps, SMAUG_EBUSY, "%s", msg);
  json_t *vols = json_object_get(doc, "volumes"), *v;
  size_t i;
  json_array_foreach(vols, i, v) {
    if ((err = sp_deps_add(deps, "smaug.volume", json_string_value(v),
                           r.project)) != 0)
      break;
  }
  const char *image = json_string_value(json_object_get(doc, "image"));
  if (err == 0 && image != NULL)
    err = sp_deps_add(deps, "smaug.image", image, r.project);
  json_decref(doc);
  return err;
}

static void protect_parallel(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_parallel, data))
    return;
  sp_req_t r;
  if (sp_req_init(&r, act, data, "servers", ".json") != 0)
    return;
  int err = sp_save_small_start(act, r.path, r.id, OBJECT);
  if (err != 0) {
    smaug_activity_fail(act, err, "cannot start saving %s: %s", r.path,
                        smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "saving the descriptor");
}

/* Nothing depends on the children; the SDK holds the answer until the
 * descriptor saved by Parallel is in the bank. */
static void protect_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_sync, data))
    return;
  smaug_activity_complete(act, "saved");
}

/* The restored id of child (type, id), or NULL when it has none. */
static const char *restored_child(const smaug_activity_t *act, const char *type,
                                  const char *id) {
  size_t n = smaug_activity_n_children(act);
  for (size_t i = 0; i < n; i++) {
    const char *rid = smaug_activity_child_restored_id(act, i);
    if (strcmp(smaug_activity_child_type(act, i), type) == 0 &&
        strcmp(smaug_activity_child_id(act, i), id) == 0 && rid != NULL &&
        rid[0] != '\0')
      return rid;
  }
  return NULL;
}

/* Points the descriptor at the restored children. A volume, image or
 * network without a restored child keeps its original id (the graph did
 * not hold it, for example a plan with explicit edges); those are listed
 * in metadata "kept_original" and logged. */
static int rewrite(smaug_job_t *job, const smaug_activity_t *act, json_t *doc,
                   const char *new_id) {
  char kept[512] = "";
  size_t kl = 0;
  json_t *vols = json_object_get(doc, "volumes"), *v;
  size_t i;
  json_array_foreach(vols, i, v) {
    const char *id = json_string_value(v);
    const char *rid = restored_child(act, "smaug.volume", id);
    if (rid != NULL)
      json_array_set_new(vols, i, json_string(rid));
    else if (kl < sizeof(kept))
      kl += (size_t)snprintf(kept + kl, sizeof(kept) - kl, "%s%s",
                             kl ? "," : "", id);
  }
  const char *keys[] = {"image", "network"};
  const char *types[] = {"smaug.image", "smaug.network"};
  for (int k = 0; k < 2; k++) {
    const char *id = json_string_value(json_object_get(doc, keys[k]));
    const char *rid = id != NULL ? restored_child(act, types[k], id) : NULL;
    if (rid != NULL)
      json_object_set_new(doc, keys[k], json_string(rid));
    else if (id != NULL && k == 0 && kl < sizeof(kept))
      kl += (size_t)snprintf(kept + kl, sizeof(kept) - kl, "%s%s",
                             kl ? "," : "", id);
  }
  json_object_set_new(doc, "id", json_string(new_id));
  if (kl == 0)
    return 0;
  smaug_activity_log(act, SMAUG_LOG_WARN,
                     "children not restored, original ids kept: %s", kept);
  return smaug_job_set_metadata(job, "kept_original", kept);
}

/* Re-creates the descriptor under the restored id. */
static int restore_work(smaug_job_t *job, void *data) {
  const sp_req_t *r = data;
  smaug_activity_t *act = smaug_job_activity(job);
  char *text = NULL, msg[256] = "";
  size_t len = 0;
  int err = sp_store_get_bytes(
      smaug_activity_bank_uri(act), smaug_activity_bank_section(act), OBJECT,
      SP_MAX_DESCRIPTOR, &text, &len, msg, sizeof(msg));
  if (err != 0) {
    smaug_job_set_message(job, "%s", msg);
    return sp_fs_err(err);
  }
  const char *want = smaug_activity_saved(act, "sha256");
  char sha[65];
  if (want != NULL &&
      (sp_sha256_hex(text, len, sha) != 0 || strcmp(sha, want) != 0)) {
    smaug_job_set_message(job,
                          "bank copy of %s does not match the "
                          "checkpoint's sha256 %s",
                          r->id, want);
    free(text);
    return SMAUG_EIO;
  }
  json_t *doc = load_descriptor(text, len, "bank copy", msg, sizeof(msg));
  free(text);
  if (doc == NULL) {
    smaug_job_set_message(job, "%s", msg);
    return SMAUG_EIO;
  }
  err = rewrite(job, act, doc, r->new_id);
  char *out =
      err == 0 ? json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  json_decref(doc);
  if (err != 0)
    return err;
  if (out == NULL)
    return SMAUG_ENOMEM;
  size_t n = strlen(out);
  if ((err = sp_write_atomic(r->new_path, out, n)) != 0)
    smaug_job_set_message(job, "writing %s: %s", r->new_path,
                          smaug_strerror(err));
  if (err == 0 && sp_sha256_hex(out, n, sha) == 0)
    err = smaug_job_set_metadata(job, "sha256", sha);
  free(out);
  return err != 0 ? sp_fs_err(err) : 0;
}

static void restore_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, restore_sync, data))
    return;
  sp_restore_in_job(act, data, "servers", ".json", restore_work);
}

static const smaug_type_def_t types[] = {{
    .size = sizeof(smaug_type_def_t),
    .type = TYPE,
    .protect = {.parallel = protect_parallel, .sync = protect_sync},
    .restore = {.sync = restore_sync},
    .remove = {.sync = sp_delete_sync},
    .list_dependents = list_dependents,
    .options_schema = schema,
    .restore_schema = schema,
    .data = &sp_opts,
}};

static const smaug_plugin_def_t def = {
    .size = sizeof(def),
    .name = "smaug-plugin-server",
    .version = "0.1.0",
    .types = types,
    .n_types = 1,
    SP_OPTIONS, /* --cloud, --work-dir */
};

int main(int argc, char **argv) {
  sp_opts_init();
  return smaug_plugin_main(argc, argv, &def);
}
