/*
 * test_plugin.c - the plugin process (plugin-sdk/src/plugin.c), run as a
 * real child process: the listening line, unix sockets, a bad command
 * line, --help, a graceful SIGTERM with work in flight, and exit with the
 * parent; and, in process, the options a plugin declares.
 */
#include "chk_client.h"
#include "sdk.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

typedef struct {
  pid_t pid;
  int fd; /* the plugin's stderr */
  char log[65536];
  size_t len;
} proc_t;

static void spawn_plugin(proc_t *p, const char *const *args) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  char *argv[16] = {HOLD_PLUGIN};
  int n = 1;
  for (; args[n - 1] != NULL && n < 15; n++)
    argv[n] = (char *)args[n - 1];
  argv[n] = NULL;
  /* Its own process group: the test runner's clean-up of other tests'
   * process groups must not deliver signals to this plugin. */
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  memset(p, 0, sizeof(*p));
  cr_assert_eq(posix_spawn(&p->pid, HOLD_PLUGIN, &fa, &attr, argv, environ), 0);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  p->fd = fds[0];
}

/* Reads the log until `needle` shows up (1) or the stream ends (0). */
static int read_until(proc_t *p, const char *needle) {
  for (;;) {
    if (strstr(p->log, needle) != NULL)
      return 1;
    struct pollfd pfd = {p->fd, POLLIN, 0};
    if (poll(&pfd, 1, 20000) <= 0)
      return 0;
    ssize_t r = read(p->fd, p->log + p->len, sizeof(p->log) - 1 - p->len);
    if (r <= 0)
      return 0;
    p->len += (size_t)r;
    p->log[p->len] = '\0';
  }
}

/* The address from "msg=listening addr=...". */
static void listen_addr(proc_t *p, char *out, size_t n) {
  cr_assert(read_until(p, "msg=listening addr="), "%s", p->log);
  const char *a = strstr(p->log, "msg=listening addr=") + 19;
  while (strchr(a, ' ') == NULL && !read_until(p, " "))
    ;
  size_t l = strcspn(a, " \n");
  cr_assert_lt(l, n);
  memcpy(out, a, l);
  out[l] = '\0';
}

static int wait_exit(proc_t *p) {
  int st;
  cr_assert_eq(waitpid(p->pid, &st, 0), p->pid);
  read_until(p, "\x01"); /* drain to EOF */
  close(p->fd);
  cr_assert(WIFEXITED(st), "killed by signal %d", WTERMSIG(st));
  return WEXITSTATUS(st);
}

Test(plugin, sigterm_with_work_in_flight_exits_cleanly, .timeout = 30) {
  proc_t p;
  const char *args[] = {"--grace-ms", "300", NULL};
  spawn_plugin(&p, args);
  char addr[128];
  listen_addr(&p, addr, sizeof(addr));
  chk_t c;
  cr_assert_eq(chk_open(&c, addr), 0);
  chk_req_t r = {.op_id = "op1",
                 .op_kind = 1,
                 .type = "t.hold",
                 .id = "r1",
                 .key = "op1/p"};
  chk_act_t par, sync;
  cr_assert_eq(chk_act_run(&c, &r, 10000, &par), 0);
  cr_assert_eq(par.code, GRPC_STATUS_OK, "%s", par.message);
  r.sync = 1;
  r.key = "op1/s";
  cr_assert_eq(chk_act_start(&c, &r, 20000, &sync), 0);
  /* Sync waits for the job, which only a cancel ends; whether the signal
   * arrives before or after the Sync call, the call must fail and the job
   * must be cancelled by the shutdown. */
  cr_assert_eq(kill(p.pid, SIGTERM), 0);
  chk_wait(&c, &sync.done);
  cr_assert_neq(sync.code, GRPC_STATUS_OK);
  chk_act_clear(&par);
  chk_act_clear(&sync);
  chk_close(&c);
  cr_assert_eq(wait_exit(&p), 0, "%s", p.log);
  cr_assert(strstr(p.log, "job ended cancelled=1") != NULL, "%s", p.log);
  cr_assert(strstr(p.log, "msg=stopped") != NULL, "%s", p.log);
}

Test(plugin, sigterm_when_idle_exits_zero, .timeout = 30) {
  proc_t p;
  const char *args[] = {NULL};
  spawn_plugin(&p, args);
  char addr[128];
  listen_addr(&p, addr, sizeof(addr));
  cr_assert(strncmp(addr, "127.0.0.1:", 10) == 0);
  cr_assert_gt(atoi(addr + 10), 0, "the bound port is logged");
  cr_assert_eq(kill(p.pid, SIGTERM), 0);
  cr_assert_eq(wait_exit(&p), 0);
}

Test(plugin, listens_on_a_unix_socket_from_the_environment, .timeout = 30) {
  char dir[] = "/tmp/smaug-sdk-sock-XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char env[128];
  snprintf(env, sizeof(env), "unix:%s/p.sock", dir);
  setenv("SMAUG_PLUGIN_LISTEN", env, 1);
  proc_t p;
  const char *args[] = {NULL};
  spawn_plugin(&p, args);
  unsetenv("SMAUG_PLUGIN_LISTEN");
  char addr[128];
  listen_addr(&p, addr, sizeof(addr));
  cr_assert_str_eq(addr, env);
  chk_t c;
  cr_assert_eq(chk_open(&c, addr), 0);
  Smaug__V1__GetPluginInfoResponse *info;
  grpc_status_code code;
  cr_assert_eq(chk_info(&c, &info, &code, 5000), 0);
  cr_assert_eq(code, GRPC_STATUS_OK);
  cr_assert_str_eq(info->name, "hold");
  smaug__v1__get_plugin_info_response__free_unpacked(info, NULL);
  chk_close(&c);
  kill(p.pid, SIGTERM);
  cr_assert_eq(wait_exit(&p), 0);
  char sock[160];
  snprintf(sock, sizeof(sock), "%s/p.sock", dir);
  unlink(sock);
  rmdir(dir);
}

Test(plugin, a_bad_command_line_exits_2, .timeout = 30) {
  proc_t p;
  const char *args[] = {"--no-such-option", "x", NULL};
  spawn_plugin(&p, args);
  cr_assert_eq(wait_exit(&p), 2);
  cr_assert(strstr(p.log, "unknown option") != NULL, "%s", p.log);
}

Test(plugin, help_lists_the_declared_options_and_exits_0, .timeout = 30) {
  proc_t p;
  const char *args[] = {"--help", NULL};
  spawn_plugin(&p, args);
  cr_assert_eq(wait_exit(&p), 0);
  cr_assert(strstr(p.log, "--listen ADDR") != NULL, "%s", p.log);
  cr_assert(strstr(p.log, "--tag VALUE (or SMAUG_HOLD_TAG)") != NULL, "%s",
            p.log);
}

/* ------------------------------------------------- declared options */

static const char *opt_cloud;

static void opt_noop(smaug_activity_t *act, void *data) {
  smaug_activity_complete(act, NULL);
}

static const smaug_type_def_t opt_types[] = {
    {.size = sizeof(smaug_type_def_t),
     .type = "t.opt",
     .protect = {.parallel = opt_noop}}};

/* Runs sdk_plugin_new on `def` with `args` and frees the plugin. */
static int new_with(const smaug_plugin_def_t *def, const char *const *args) {
  uv_loop_t loop;
  rt_t *rt;
  smaug_plugin_t *p = NULL;
  char *argv[8] = {"plugin"};
  int argc = 1;
  for (; args != NULL && args[argc - 1] != NULL; argc++)
    argv[argc] = (char *)args[argc - 1];
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(rt_new(&loop, &rt), 0);
  int err = sdk_plugin_new(rt, def, argc, argv, &p);
  if (p != NULL) {
    rt_server_free(p->srv);
    p->srv = NULL;
    sdk_plugin_free(p);
  }
  rt_free(rt);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
  return err;
}

static const smaug_option_def_t cloud_opt[] = {
    {.size = sizeof(smaug_option_def_t),
     .name = "--cloud",
     .env = "SMAUG_TEST_CLOUD",
     .help = "where the cloud is",
     .value = &opt_cloud}};
static const smaug_plugin_def_t opt_def = {.size = sizeof(smaug_plugin_def_t),
                                           .name = "opt",
                                           .version = "1",
                                           .types = opt_types,
                                           .n_types = 1,
                                           .options = cloud_opt,
                                           .n_options = 1};

Test(plugin, a_declared_option_is_taken_from_the_command_line, .timeout = 30) {
  setenv("SMAUG_TEST_CLOUD", "/from-env", 1);
  opt_cloud = "default";
  const char *args[] = {"--cloud", "/from-argv", NULL};
  cr_assert_eq(new_with(&opt_def, args), 0);
  cr_assert_str_eq(opt_cloud, "/from-argv");
  const char *eq[] = {"--cloud=/with-equals", NULL};
  cr_assert_eq(new_with(&opt_def, eq), 0);
  cr_assert_str_eq(opt_cloud, "/with-equals");
}

Test(plugin, a_declared_option_falls_back_to_env_then_default, .timeout = 30) {
  setenv("SMAUG_TEST_CLOUD", "/from-env", 1);
  opt_cloud = "default";
  cr_assert_eq(new_with(&opt_def, NULL), 0);
  cr_assert_str_eq(opt_cloud, "/from-env");
  setenv("SMAUG_TEST_CLOUD", "", 1); /* empty counts as unset */
  opt_cloud = "default";
  cr_assert_eq(new_with(&opt_def, NULL), 0);
  cr_assert_str_eq(opt_cloud, "default");
}

Test(plugin, a_bad_command_line_leaves_declared_options_alone, .timeout = 30) {
  unsetenv("SMAUG_TEST_CLOUD");
  opt_cloud = "default";
  const char *args[] = {"--cloud", "/x", "--no-such-option", "y", NULL};
  cr_assert_eq(new_with(&opt_def, args), SMAUG_EINVAL);
  cr_assert_str_eq(opt_cloud, "default");
  const char *missing[] = {"--cloud", NULL};
  cr_assert_eq(new_with(&opt_def, missing), SMAUG_EINVAL);
}

Test(plugin, an_option_that_shadows_the_sdk_is_refused, .timeout = 30) {
  static const smaug_option_def_t clash[] = {
      {.size = sizeof(smaug_option_def_t),
       .name = "--listen",
       .value = &opt_cloud}};
  smaug_plugin_def_t d = opt_def;
  d.options = clash;
  cr_assert_eq(new_with(&d, NULL), SMAUG_EINVAL);
  static const smaug_option_def_t twice[] = {
      {.size = sizeof(smaug_option_def_t), .name = "--a", .value = &opt_cloud},
      {.size = sizeof(smaug_option_def_t), .name = "--a", .value = &opt_cloud}};
  d.options = twice;
  d.n_options = 2;
  cr_assert_eq(new_with(&d, NULL), SMAUG_EINVAL);
}

Test(plugin, exits_when_its_parent_dies, .timeout = 30) {
  int fds[2];
  cr_assert_eq(pipe(fds), 0);
  pid_t mid = fork();
  cr_assert_geq(mid, 0);
  if (mid == 0) {
    /* The plugin's parent: wait until it serves, then die. */
    close(fds[0]);
    proc_t p;
    const char *args[] = {"--exit-with-parent", NULL};
    spawn_plugin(&p, args);
    if (!read_until(&p, "msg=listening"))
      _exit(1);
    dprintf(fds[1], "%d\n", (int)p.pid);
    _exit(0);
  }
  close(fds[1]);
  char buf[32] = {0};
  cr_assert_gt(read(fds[0], buf, sizeof(buf) - 1), 0);
  close(fds[0]);
  pid_t plugin = (pid_t)atoi(buf);
  int st;
  cr_assert_eq(waitpid(mid, &st, 0), mid);
  cr_assert_eq(WEXITSTATUS(st), 0);
  /* The plugin is not our child: wait for it to disappear. */
  int gone = 0;
  for (int i = 0; i < 1000 && !gone; i++) {
    gone = kill(plugin, 0) != 0;
    if (!gone)
      usleep(10000);
  }
  cr_assert(gone, "the plugin outlived its parent");
}
