/*
 * test_limiter.c - unit suite for the shared plugin limiter
 * (server/plugins/limiter.h): limits per plugin and per type, a release
 * waking the next waiter, turns between clients in FIFO order, a waiter
 * removed when its client is cancelled, granted slots given back, raised
 * limits, and grant callbacks that end their calls at once.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "limiter.h"

/* A client of the limiter: wants `want` slots, records each call it
 * starts in `log`, and (with `sync`) ends each call at once. */
typedef struct client_s {
  lim_waiter_t w;
  char name;
  int want;
  int sync;
  int grants;
} client_t;

static char log_buf[256];
static size_t log_n;

static void client_pump(client_t *c) {
  while (c->want > 0 && lim_take(&c->w)) {
    c->want--;
    if (log_n + 1 < sizeof(log_buf))
      log_buf[log_n++] = c->name;
    if (c->sync)
      lim_release(c->w.key);
  }
}

static void on_grant(lim_waiter_t *w, void *data) {
  client_t *c = data;
  c->grants++;
  client_pump(c);
}

/* A client that only counts its grants and takes nothing. */
static void on_grant_count(lim_waiter_t *w, void *data) {
  ((client_t *)data)->grants++;
}

static void client_init(client_t *c, lim_key_t *k, char name, int want) {
  memset(c, 0, sizeof(*c));
  c->name = name;
  c->want = want;
  lim_waiter_init(&c->w, k, on_grant, c, NULL);
}

/* Starts one client per letter of `names` on `k`, each wanting `want`
 * slots, in that order. */
static void clients_start(client_t *cs, lim_key_t *k, const char *names,
                          int want) {
  for (size_t i = 0; names[i]; i++) {
    client_init(&cs[i], k, names[i], want);
    client_pump(&cs[i]);
  }
}

static lim_t *lim;

static void setup(void) {
  log_n = 0;
  memset(log_buf, 0, sizeof(log_buf));
  cr_assert_eq(lim_new(&lim), 0);
}

static void teardown(void) {
  lim_free(lim);
}

TestSuite(limiter, .init = setup, .fini = teardown, .timeout = 10);

Test(limiter, plugin_limit_spans_its_types) {
  lim_key_t *a = lim_key(lim, "p", 2, "t.a", 0);
  lim_key_t *b = lim_key(lim, "p", 2, "t.b", 0);
  lim_key_t *other = lim_key(lim, "q", 2, "t.a", 0);
  cr_assert(a && b && other && a != b && a != other);
  cr_assert_eq(lim_key(lim, "p", 2, "t.a", 0), a, "keys are interned");
  client_t ca, cb, co;
  client_init(&ca, a, 'a', 5);
  client_init(&cb, b, 'b', 5);
  client_init(&co, other, 'o', 5);
  client_pump(&ca);
  client_pump(&cb);
  client_pump(&co);
  cr_expect_eq(lim_key_in_flight(a), 2);
  cr_expect_eq(lim_key_in_flight(b), 0, "plugin p is full");
  cr_expect_eq(lim_plugin_in_flight(a), 2);
  cr_expect_eq(lim_key_in_flight(other), 2, "plugin q has its own limit");
  cr_expect_str_eq(lim_key_plugin(a), "p");
  cr_expect_str_eq(lim_key_type(b), "t.b");
  lim_waiter_stop(&ca.w);
  lim_waiter_stop(&cb.w);
  lim_waiter_stop(&co.w);
}

Test(limiter, type_limit_per_type) {
  lim_key_t *a = lim_key(lim, "p", 0, "t.a", 1);
  lim_key_t *b = lim_key(lim, "p", 0, "t.b", 2);
  client_t c1, c2, c3;
  client_init(&c1, a, '1', 3);
  client_init(&c2, a, '2', 3);
  client_init(&c3, b, '3', 3);
  client_pump(&c1);
  client_pump(&c2);
  client_pump(&c3);
  cr_expect_eq(lim_key_in_flight(a), 1);
  cr_expect_eq(lim_key_in_flight(b), 2);
  cr_expect_str_eq(log_buf, "133");
  lim_waiter_stop(&c1.w);
  lim_waiter_stop(&c2.w);
  lim_waiter_stop(&c3.w);
}

Test(limiter, no_plugin_means_type_limit_only) {
  lim_key_t *a = lim_key(lim, NULL, 7, "t.a", 1);
  lim_key_t *b = lim_key(lim, NULL, 7, "t.b", 0);
  cr_expect_null(lim_key_plugin(a));
  client_t ca, cb;
  client_init(&ca, a, 'a', 3);
  client_init(&cb, b, 'b', 9);
  client_pump(&ca);
  client_pump(&cb);
  cr_expect_eq(lim_key_in_flight(a), 1);
  cr_expect_eq(lim_key_in_flight(b), 9, "no plugin-wide limit");
  lim_waiter_stop(&ca.w);
}

Test(limiter, release_wakes_the_next) {
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t c[2];
  clients_start(c, k, "ab", 1);
  cr_expect_str_eq(log_buf, "a");
  cr_expect_eq(c[1].grants, 0);
  lim_release(k);
  cr_expect_eq(c[1].grants, 1);
  cr_expect_str_eq(log_buf, "ab");
  cr_expect_eq(lim_key_in_flight(k), 1, "the slot went to b");
  lim_release(k);
  cr_expect_eq(lim_key_in_flight(k), 0);
}

Test(limiter, clients_take_turns_in_fifo_order) {
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t c[3];
  clients_start(c, k, "ABC", 3);
  for (int i = 0; i < 8; i++) {
    cr_assert_eq(lim_key_in_flight(k), 1, "release %d", i);
    lim_release(k);
  }
  /* A got the free slot, then one slot each in turn: no client is served
   * twice while another waits. */
  cr_expect_str_eq(log_buf, "AABCABCBC");
  lim_release(k);
  cr_expect_eq(lim_key_in_flight(k), 0);
}

Test(limiter, newcomer_waits_behind_the_queue) {
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t c[2], late;
  clients_start(c, k, "ab", 1);
  lim_release(k); /* to b */
  clients_start(&late, k, "l", 1);
  cr_expect_str_eq(log_buf, "ab");
  lim_release(k); /* to late */
  cr_expect_str_eq(log_buf, "abl");
  lim_release(k);
}

Test(limiter, cancelled_waiter_is_skipped) {
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t c[3];
  clients_start(c, k, "abc", 1);
  lim_waiter_stop(&c[1].w); /* b's operation was cancelled */
  lim_release(k);
  cr_expect_eq(c[1].grants, 0);
  cr_expect_eq(c[2].grants, 1);
  cr_expect_str_eq(log_buf, "ac");
  lim_waiter_stop(&c[1].w); /* idle: a no-op */
  lim_release(k);
  cr_expect_eq(lim_key_in_flight(k), 0);
}

Test(limiter, granted_slot_not_taken_is_given_back) {
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t c[3];
  clients_start(c, k, "a", 1);
  client_init(&c[1], k, 'b', 1);
  lim_waiter_init(&c[1].w, k, on_grant_count, &c[1], NULL);
  client_pump(&c[1]);
  clients_start(&c[2], k, "c", 1);
  lim_release(k);
  cr_expect_eq(c[1].grants, 1);
  cr_expect_eq(lim_key_in_flight(k), 1, "held for b");
  lim_waiter_stop(&c[1].w); /* b has nothing left to start */
  cr_expect_eq(c[2].grants, 1);
  cr_expect_str_eq(log_buf, "ac");
  lim_release(k);
  cr_expect_eq(lim_key_in_flight(k), 0);
}

Test(limiter, raised_limit_grants_waiters) {
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t c[2];
  clients_start(c, k, "ab", 1);
  cr_expect_eq(c[1].grants, 0);
  cr_expect_eq(lim_key(lim, "p", 2, "t", 0), k); /* re-announced */
  cr_expect_eq(c[1].grants, 1);
  cr_expect_eq(lim_key_in_flight(k), 2);
  lim_release(k);
  lim_release(k);
}

Test(limiter, synchronous_calls_do_not_recurse) {
  enum { N = 5000 };
  static client_t cs[N];
  lim_key_t *k = lim_key(lim, "p", 1, "t", 0);
  client_t first;
  clients_start(&first, k, "f", 1);
  for (int i = 0; i < N; i++) {
    client_init(&cs[i], k, 'x', 1);
    cs[i].sync = 1; /* each call ends inside its grant callback */
    client_pump(&cs[i]);
  }
  lim_release(k);
  for (int i = 0; i < N; i++)
    cr_assert_eq(cs[i].grants, 1, "client %d", i);
  cr_expect_eq(lim_key_in_flight(k), 0);
}

Test(limiter, a_group_holds_one_place_in_a_full_plugin) {
  /* Operation G has two types waiting, operation H one: G must not get
   * two turns before H gets one. */
  lim_key_t *a = lim_key(lim, "p", 1, "t.a", 0);
  lim_key_t *b = lim_key(lim, "p", 1, "t.b", 0);
  static const char g = 'G', h = 'H';
  client_t ga, gb, ha;
  client_init(&ga, a, 'a', 2);
  client_init(&gb, b, 'b', 2);
  client_init(&ha, a, 'h', 2);
  lim_waiter_init(&ga.w, a, on_grant, &ga, &g);
  lim_waiter_init(&gb.w, b, on_grant, &gb, &g);
  lim_waiter_init(&ha.w, a, on_grant, &ha, &h);
  client_pump(&ga); /* takes the slot, then queues */
  client_pump(&gb); /* G has its place: not queued */
  client_pump(&ha);
  cr_expect_eq(gb.w.queued, 0);
  lim_release(a); /* to G's a; then b queues behind H */
  client_pump(&gb);
  lim_release(a); /* to H */
  lim_release(a); /* to G's b */
  cr_expect_str_eq(log_buf, "aahb");
  lim_waiter_stop(&ga.w);
  lim_waiter_stop(&gb.w);
  lim_waiter_stop(&ha.w);
  lim_release(b);
  cr_expect_eq(lim_plugin_in_flight(a), 0);
}
