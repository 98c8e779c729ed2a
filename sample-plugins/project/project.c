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

#include <errno.h>
#include <smaug/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TYPE   "smaug.project"
#define OBJECT "project.json"

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
  sp_req_t r;
  char path[PATH_MAX];
  struct stat st;
  int err = sp_deps_init(&r, deps, data, "", "");
  if (err != 0)
    return err;
  sp_msg(path, sizeof(path), "%s/%s", r.dir, OBJECT);
  if (stat(path, &st) != 0)
    return smaug_dependents_fail(deps, SMAUG_ENOENT, "project %s: %s: %s", r.id,
                                 path, strerror(errno));
  for (size_t k = 0; err == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
    char dir[PATH_MAX], **ids = NULL;
    sp_msg(dir, sizeof(dir), "%s/%s", r.dir, kinds[k].kind);
    if ((err = sp_list_ids(dir, kinds[k].ext, &ids, NULL)) != 0)
      return smaug_dependents_fail(deps, sp_fs_err(err), "listing %s: %s", dir,
                                   smaug_strerror(err));
    for (char **p = ids; err == 0 && *p != NULL; p++)
      err = sp_deps_add(deps, kinds[k].type, *p, r.id);
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

/* Re-creates project.json when it is missing. */
static int restore_work(smaug_job_t *job, void *data) {
  const sp_req_t *r = data;
  smaug_activity_t *act = smaug_job_activity(job);
  char path[PATH_MAX];
  struct stat st;
  sp_msg(path, sizeof(path), "%s/%s", r->dir, OBJECT);
  if (stat(path, &st) == 0)
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
  if ((err = sp_write_atomic(path, text, len)) != 0)
    smaug_job_set_message(job, "writing %s: %s", path, smaug_strerror(err));
  free(text);
  if (err != 0)
    return sp_fs_err(err);
  return smaug_job_set_metadata(job, "created", "true");
}

static void restore_sync(smaug_activity_t *act, void *data) {
  if (sp_delayed(act, restore_sync, data))
    return;
  sp_restore_in_job(act, data, "", "", restore_work);
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
    .data = &sp_opts,
}};

static const smaug_plugin_def_t def = {
    .size = sizeof(def),
    .name = "smaug-plugin-project",
    .version = "0.1.0",
    .types = types,
    .n_types = 1,
    SP_OPTIONS, /* --cloud, --work-dir */
};

int main(int argc, char **argv) {
  sp_opts_init();
  return smaug_plugin_main(argc, argv, &def);
}
