/*
 * test_kv.c - the string map (common/kv.h) used for metadata, extras,
 * parameters and the plugin SDK's indexes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "kv.h"

Test(kv, set_get_replace_and_order, .timeout = 5) {
  kv_t kv;
  kv_init(&kv);
  cr_assert_eq(kv_set(&kv, "b", "2"), 0);
  cr_assert_eq(kv_set(&kv, "a", "1"), 0);
  cr_assert_eq(kv_set(&kv, "c", "3"), 0);
  cr_assert_eq(kv_set(&kv, "b", "two"), 0);
  cr_assert_eq(kv_count(&kv), 3);
  cr_assert_str_eq(kv.items[0].key, "b"); /* insertion order */
  cr_assert_str_eq(kv.items[1].key, "a");
  cr_assert_str_eq(kv.items[2].key, "c");
  cr_assert_str_eq(kv_get(&kv, "b"), "two");
  cr_assert_null(kv_get(&kv, "z"));
  kv_free(&kv);
  cr_assert_eq(kv_count(&kv), 0);
}

Test(kv, delete_missing_key_is_enoent, .timeout = 5) {
  kv_t kv;
  kv_init(&kv);
  cr_assert_eq(kv_set(&kv, "a", "1"), 0);
  cr_assert_eq(kv_del(&kv, "x"), UV_ENOENT);
  cr_assert_eq(kv_del(&kv, "a"), 0);
  cr_assert_eq(kv_count(&kv), 0);
  kv_free(&kv);
}

Test(kv, copy_is_deep_and_equal, .timeout = 5) {
  kv_t a, b;
  kv_init(&a);
  kv_init(&b);
  kv_set(&a, "k", "v");
  kv_set(&b, "old", "x");
  cr_assert_eq(kv_copy(&b, &a), 0);
  cr_assert(kv_equal(&a, &b));
  kv_set(&a, "k", "changed");
  cr_assert_str_eq(kv_get(&b, "k"), "v");
  cr_assert_not(kv_equal(&a, &b));
  cr_assert(kv_equal(NULL, &(kv_t){0}));
  kv_free(&a);
  kv_free(&b);
}

/* Past KV_SMALL the index takes over: every key is still found after
 * inserts, replacements and deletes in a scrambled order, and the index
 * never loses a key the array holds (the array and a brute scan agree). */
Test(kv, many_keys_with_deletes_stay_consistent, .timeout = 5) {
  kv_t kv;
  kv_init(&kv);
  char k[16], v[16];
  enum { N = 5000 };
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof(k), "k%d", (i * 7919) % N);
    cr_assert_eq(kv_set(&kv, k, k), 0);
  }
  cr_assert_eq(kv_count(&kv), N);
  for (int i = 0; i < N; i += 3) {
    snprintf(k, sizeof(k), "k%d", i);
    cr_assert_eq(kv_del(&kv, k), 0);
    cr_assert_eq(kv_del(&kv, k), UV_ENOENT);
  }
  for (int i = 0; i < N; i++) {
    snprintf(k, sizeof(k), "k%d", i);
    if (i % 3 == 0) {
      cr_assert_null(kv_get(&kv, k), "%s deleted", k);
    } else {
      cr_assert_str_eq(kv_get(&kv, k), k);
      snprintf(v, sizeof(v), "v%d", i);
      cr_assert_eq(kv_set(&kv, k, v), 0); /* replace, not add */
    }
  }
  cr_assert_eq(kv_count(&kv), N - (N + 2) / 3);
  for (size_t i = 0; i < kv.n; i++) {
    cr_assert_eq(kv_get(&kv, kv.items[i].key), kv.items[i].val);
    cr_assert_eq(kv.items[i].val[0], 'v');
  }
  kv_free(&kv);
}

/* Hostile input: NULL map, key and value are refused or harmless; an
 * empty key is a key; a 1 MiB key works; the same key set twice is one
 * pair with the last value. */
Test(kv, hostile_null_huge_and_duplicate_keys, .timeout = 5) {
  kv_t kv;
  kv_init(&kv);
  cr_assert_eq(kv_set(NULL, "a", "1"), UV_EINVAL);
  cr_assert_eq(kv_set(&kv, NULL, "1"), UV_EINVAL);
  cr_assert_eq(kv_set(&kv, "a", NULL), UV_EINVAL);
  cr_assert_null(kv_get(NULL, "a"));
  cr_assert_null(kv_get(&kv, NULL));
  cr_assert_eq(kv_del(&kv, NULL), UV_ENOENT);
  cr_assert_eq(kv_del(NULL, "a"), UV_ENOENT);
  cr_assert_eq(kv_count(NULL), 0);
  kv_free(NULL);
  kv_each(NULL, NULL, NULL);

  cr_assert_eq(kv_set(&kv, "", "empty"), 0);
  cr_assert_str_eq(kv_get(&kv, ""), "empty");

  size_t big = 1 << 20;
  char *huge = malloc(big + 1);
  cr_assert_not_null(huge);
  memset(huge, 'x', big);
  huge[big] = '\0';
  cr_assert_eq(kv_set(&kv, huge, huge), 0);
  cr_assert_eq(strlen(kv_get(&kv, huge)), big);
  huge[big - 1] = 'y'; /* one byte off: another key */
  cr_assert_null(kv_get(&kv, huge));
  free(huge);

  for (int i = 0; i < 100; i++) {
    char v[8];
    snprintf(v, sizeof(v), "%d", i);
    cr_assert_eq(kv_set(&kv, "dup", v), 0);
  }
  cr_assert_eq(kv_count(&kv), 3);
  cr_assert_str_eq(kv_get(&kv, "dup"), "99");
  kv_free(&kv);
  cr_assert_eq(kv_count(&kv), 0);
}

/* Equality ignores order: the same pairs added in two orders are equal. */
Test(kv, equal_ignores_order, .timeout = 5) {
  kv_t a, b;
  kv_init(&a);
  kv_init(&b);
  char k[16];
  for (int i = 0; i < 40; i++) {
    snprintf(k, sizeof(k), "k%d", i);
    cr_assert_eq(kv_set(&a, k, k), 0);
    snprintf(k, sizeof(k), "k%d", 39 - i);
    cr_assert_eq(kv_set(&b, k, k), 0);
  }
  cr_assert(kv_equal(&a, &b));
  cr_assert_eq(kv_set(&b, "k7", "other"), 0);
  cr_assert_not(kv_equal(&a, &b));
  kv_free(&a);
  kv_free(&b);
}

static void drop_odd(const char *key, void *val, void *arg) {
  kv_t *kv = arg;
  int *n = val;
  if (*n % 2 == 1)
    cr_assert_eq(kv_del(kv, key), 0);
}

/* A borrowed map keeps pointers, never frees them, and lets kv_each
 * delete the pair it is visiting: every pair is visited exactly once. */
Test(kv, borrowed_pointers_and_delete_while_iterating, .timeout = 5) {
  kv_t kv;
  kv_init_borrowed(&kv);
  static int vals[100];
  char k[16];
  for (int i = 0; i < 100; i++) {
    vals[i] = i;
    snprintf(k, sizeof(k), "p%d", i);
    cr_assert_eq(kv_put(&kv, k, &vals[i]), 0);
  }
  cr_assert_eq(kv_put(&kv, "x", NULL), UV_EINVAL);
  cr_assert_eq(kv_ptr(&kv, "p42"), &vals[42]);
  kv_t copy;
  kv_init_borrowed(&copy);
  cr_assert_eq(kv_copy(&copy, &kv), 0);
  cr_assert(kv_equal(&kv, &copy));
  kv_each(&kv, drop_odd, &kv);
  cr_assert_eq(kv_count(&kv), 50);
  for (int i = 0; i < 100; i++) {
    snprintf(k, sizeof(k), "p%d", i);
    cr_assert_eq(kv_ptr(&kv, k), i % 2 ? NULL : &vals[i], "%s", k);
    cr_assert_eq(kv_ptr(&copy, k), &vals[i]);
  }
  kv_free(&kv);
  kv_free(&copy);
  cr_assert_eq(kv_put(&kv, "again", &vals[0]), 0); /* still borrowed */
  kv_free(&kv);
}
