/*
 * test_kv.c - the sorted string map used for metadata and extras.
 */
#include <criterion/criterion.h>
#include <stdio.h>
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
  cr_assert_str_eq(kv.items[0].key, "a");
  cr_assert_str_eq(kv.items[1].key, "b");
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

Test(kv, many_keys_stay_sorted, .timeout = 5) {
  kv_t kv;
  kv_init(&kv);
  char k[16];
  for (int i = 0; i < 200; i++) {
    snprintf(k, sizeof(k), "k%03d", (i * 37) % 200);
    cr_assert_eq(kv_set(&kv, k, k), 0);
  }
  cr_assert_eq(kv_count(&kv), 200);
  for (size_t i = 1; i < kv.n; i++)
    cr_assert_lt(strcmp(kv.items[i - 1].key, kv.items[i].key), 0);
  kv_free(&kv);
}
