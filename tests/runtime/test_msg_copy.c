/*
 * test_msg_copy.c - rt_msg_copy (rt.h): a deep copy that shares no memory
 * with its source, of small and huge messages, duplicate map keys kept as
 * sent, and NULL refused.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "smaug/v1/plugin.pb-c.h"

static int same_wire(const ProtobufCMessage *a, const ProtobufCMessage *b) {
  size_t na = protobuf_c_message_get_packed_size(a);
  size_t nb = protobuf_c_message_get_packed_size(b);
  if (na != nb)
    return 0;
  uint8_t *x = malloc(na ? na : 1), *y = malloc(nb ? nb : 1);
  cr_assert(x != NULL && y != NULL);
  protobuf_c_message_pack(a, x);
  protobuf_c_message_pack(b, y);
  int same = memcmp(x, y, na) == 0;
  free(x);
  free(y);
  return same;
}

Test(msg_copy, null_arguments_are_einval, .timeout = 5) {
  Smaug__V1__OperationRef op = SMAUG__V1__OPERATION_REF__INIT;
  ProtobufCMessage *out = (ProtobufCMessage *)&op; /* must stay untouched */
  cr_assert_eq(rt_msg_copy(NULL, &out), UV_EINVAL);
  cr_assert_eq(out, (ProtobufCMessage *)&op);
  cr_assert_eq(rt_msg_copy(&op.base, NULL), UV_EINVAL);
  ProtobufCMessage bare = {0}; /* no descriptor */
  cr_assert_eq(rt_msg_copy(&bare, &out), UV_EINVAL);
  cr_assert_eq(out, (ProtobufCMessage *)&op);
}

/* Nested messages, duplicate map keys (kept: the copy is what the wire
 * says) and strings are copied; changing the source afterwards does not
 * change the copy. */
Test(msg_copy, nested_and_duplicate_keys_share_nothing, .timeout = 5) {
  Smaug__V1__OperationRef op = SMAUG__V1__OPERATION_REF__INIT;
  op.id = "op-1";
  Smaug__V1__Resource res = SMAUG__V1__RESOURCE__INIT;
  res.type = "volume";
  res.id = "vol-1";
  Smaug__V1__ActivityRequest__ParametersEntry e1 =
      SMAUG__V1__ACTIVITY_REQUEST__PARAMETERS_ENTRY__INIT;
  Smaug__V1__ActivityRequest__ParametersEntry e2 =
      SMAUG__V1__ACTIVITY_REQUEST__PARAMETERS_ENTRY__INIT;
  e1.key = e2.key = "dup";
  e1.value = "first";
  e2.value = "second";
  Smaug__V1__ActivityRequest__ParametersEntry *ents[] = {&e1, &e2};
  char key[] = "idem-key";
  Smaug__V1__ActivityRequest req = SMAUG__V1__ACTIVITY_REQUEST__INIT;
  req.operation = &op;
  req.resource = &res;
  req.n_parameters = 2;
  req.parameters = ents;
  req.idempotency_key = key;

  ProtobufCMessage *out = NULL;
  cr_assert_eq(rt_msg_copy(&req.base, &out), 0);
  cr_assert_eq(out->descriptor, &smaug__v1__activity_request__descriptor);
  cr_assert(same_wire(&req.base, out));
  Smaug__V1__ActivityRequest *c = (Smaug__V1__ActivityRequest *)out;
  cr_assert_str_eq(c->operation->id, "op-1");
  cr_assert_str_eq(c->resource->id, "vol-1");
  cr_assert_eq(c->n_parameters, 2);
  cr_assert_str_eq(c->parameters[1]->value, "second");
  cr_assert_neq(c->idempotency_key, key);
  key[0] = 'X';
  cr_assert_str_eq(c->idempotency_key, "idem-key");
  protobuf_c_message_free_unpacked(out, NULL);
}

/* An empty message and one far past the stack buffer (64 MiB of state). */
Test(msg_copy, empty_and_huge, .timeout = 30) {
  Smaug__V1__ActivityRequest empty = SMAUG__V1__ACTIVITY_REQUEST__INIT;
  ProtobufCMessage *out = NULL;
  cr_assert_eq(rt_msg_copy(&empty.base, &out), 0);
  cr_assert(same_wire(&empty.base, out));
  protobuf_c_message_free_unpacked(out, NULL);

  size_t big = 64u << 20;
  uint8_t *state = malloc(big);
  cr_assert_not_null(state);
  for (size_t i = 0; i < big; i++)
    state[i] = (uint8_t)(i * 131);
  Smaug__V1__ActivityRequest req = SMAUG__V1__ACTIVITY_REQUEST__INIT;
  req.state.data = state;
  req.state.len = big;
  out = NULL;
  cr_assert_eq(rt_msg_copy(&req.base, &out), 0);
  Smaug__V1__ActivityRequest *c = (Smaug__V1__ActivityRequest *)out;
  cr_assert_eq(c->state.len, big);
  cr_assert_neq(c->state.data, state);
  cr_assert_eq(memcmp(c->state.data, state, big), 0);
  free(state);
  protobuf_c_message_free_unpacked(out, NULL);
}
