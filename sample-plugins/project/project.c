/*
 * smaug-plugin-project - the protection plugin for smaug.project, the
 * project folders of the sample cloud.
 *
 * A project is mostly a container: ListDependents names its servers,
 * volumes, images and networks (each with extra["project"]), and the
 * plugin has little work of its own. Every Parallel is left unimplemented,
 * so the orchestrator runs no-op tasks there and the DAG still shows
 * them. Protect's Sync saves project.json into the bank; restore's Sync
 * re-creates project.json under the same project when it is missing (a
 * project is a folder, not copied: the restored id is the project id);
 * delete's Sync removes the section and collects unused chunks.
 */
#include "sp_cloud.h"
#include "sp_ops.h"
#include "sp_store.h"

#include <smaug/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TYPE   "smaug.project"
#define OBJECT "project.json"

static sp_opts_t opts;

static const char schema[] =
    "{\n"
    "  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n"
    "  \"title\": \"smaug.project parameters\",\n"
    "  \"type\": \"object\",\n"
    "  \"properties\": {\n" SP_SCHEMA_COMMON_PROPS "  }\n"
    "}\n";

/* The children, by cloud folder. */
static const struct {
  const char *kind, *ext, *type;
} kinds[] = {
    {"servers", ".json", "smaug.server"},
    {"volumes", ".raw", "smaug.volume"},
    {"images", ".img", "smaug.image"},
    {"networks", ".json", "smaug.network"},
};

static int list_dependents(smaug_dependents_t *deps, void *data) {
  const sp_opts_t *o = data;
  const char *id = smaug_dependents_id(deps);
  char path[PATH_MAX];
  struct stat st;
  if (sp_check_id(id) != 0)
    return SMAUG_EINVAL;
  if (o->cloud == NULL) {
    smaug_log(SMAUG_LOG_WARN, "no cloud directory: start with --cloud DIR");
    return SMAUG_EBUSY;
  }
  if (sp_cloud_path(o, id, "", "project", ".json", path, sizeof(path)) != 0)
    return SMAUG_EINVAL;
  if (stat(path, &st) != 0) {
    smaug_log(SMAUG_LOG_WARN, "project %s: %s: not found", id, path);
    return SMAUG_ENOENT;
  }
  int err = 0;
  for (size_t k = 0; err == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
    char dir[PATH_MAX], **ids = NULL;
    snprintf(dir, sizeof(dir), "%s/projects/%s/%s", o->cloud, id,
             kinds[k].kind);
    if ((err = sp_list_ids(dir, kinds[k].ext, &ids, NULL)) != 0)
      break;
    for (char **p = ids; err == 0 && *p != NULL; p++)
      if ((err = smaug_dependents_add(deps, kinds[k].type, *p, NULL)) == 0)
        err = smaug_dependents_set_extra(deps, "project", id);
    sp_names_free(ids);
  }
  return err;
}

static void protect_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, protect_sync, data))
    return;
  sp_req_t r;
  if (sp_req_init(&r, act, data, "", "") != 0)
    return;
  char path[PATH_MAX];
  sp_msg(path, sizeof(path), "%s/%s", r.dir, OBJECT);
  int err = sp_save_small_start(act, path, r.id, OBJECT);
  if (err != 0) {
    smaug_activity_fail(act, err, "cannot start saving %s: %s", path,
                        smaug_strerror(err));
    return;
  }
  smaug_activity_complete(act, "saved"); /* held until the job ends */
}

typedef struct {
  sp_req_t r;
  char path[PATH_MAX];
} restore_t;

static int restore_work(smaug_job_t *job, void *data) {
  restore_t *rs = data;
  smaug_activity_t *act = smaug_job_activity(job);
  struct stat st;
  if (stat(rs->path, &st) == 0)
    return smaug_job_set_metadata(job, "created", "false");
  char *text = NULL, msg[256] = "";
  size_t len = 0;
  int err = sp_store_get_bytes(
      smaug_activity_bank_uri(act), smaug_activity_bank_section(act), OBJECT,
      SP_MAX_DESCRIPTOR, &text, &len, msg, sizeof(msg));
  if (err != 0) {
    smaug_job_set_message(job, "%s", msg);
    return sp_fs_err(err);
  }
  if ((err = sp_write_atomic(rs->path, text, len)) != 0)
    smaug_job_set_message(job, "writing %s: %s", rs->path, smaug_strerror(err));
  free(text);
  if (err != 0)
    return sp_fs_err(err);
  return smaug_job_set_metadata(job, "created", "true");
}

static void restore_done(smaug_job_t *job, int status, void *data) {
  restore_t *rs = data;
  smaug_activity_t *act = smaug_job_activity(job);
  if (status != 0)
    smaug_activity_fail(act, status, "%s", smaug_job_message(job));
  else if (smaug_activity_set_restored_id(act, rs->r.id) != 0)
    smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
  else
    smaug_activity_complete(act, "restored");
  free(rs);
}

static void restore_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, restore_sync, data))
    return;
  restore_t *rs = calloc(1, sizeof(*rs));
  if (rs == NULL) {
    smaug_activity_fail(act, SMAUG_ENOMEM, "out of memory");
    return;
  }
  if (sp_req_init(&rs->r, act, data, "", "") != 0) {
    free(rs);
    return;
  }
  sp_msg(rs->path, sizeof(rs->path), "%s/%s", rs->r.dir, OBJECT);
  int err = smaug_job_start(act, restore_work, restore_done, rs);
  if (err != 0) {
    free(rs);
    smaug_activity_fail(act, err, "cannot start the restore: %s",
                        smaug_strerror(err));
  }
}

static const smaug_type_def_t types[] = {{
    .size = sizeof(smaug_type_def_t),
    .type = TYPE,
    .protect = {.sync = protect_sync},
    .restore = {.sync = restore_sync},
    .remove = {.sync = sp_delete_sync},
    .list_dependents = list_dependents,
    .options_schema = schema,
    .restore_schema = schema,
    .data = &opts,
}};

static const smaug_plugin_def_t def = {
    .size = sizeof(def),
    .name = "smaug-plugin-project",
    .version = "0.1.0",
    .types = types,
    .n_types = 1,
};

int main(int argc, char **argv) {
  int rc = sp_opts_parse(&argc, argv, &opts);
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  return smaug_plugin_main(argc, argv, &def);
}
