/*
 * fuzz_pbjson.c - protobuf-c messages to JSON (cli/cli_pbjson.c), as
 * `smaug -o json` prints whatever a server answers.
 *
 * Input: one byte choosing an Orchestrator method (its response type is
 * decoded), then the wire bytes. Whatever protobuf-c accepts is converted
 * and printed; the enum short names are taken for the values it holds.
 * Property: a JSON object that converts is printable.
 */
#include "cli_pbjson.h"
#include "fuzz.h"
#include "smaug/v1/orchestrator.smaug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  const rt_method_t *m =
      &smaug_v1_orchestrator_methods[data[0] % SMAUG_V1_ORCHESTRATOR_N_METHODS];
  ProtobufCMessage *msg =
      protobuf_c_message_unpack(m->output, NULL, size - 1, data + 1);
  if (msg == NULL)
    return 0;
  json_t *j = cli_pbjson_from_message(msg);
  if (j != NULL) {
    char *text = json_dumps(j, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(j);
  }
  /* Every enum field's short name, as the table output prints them. */
  const ProtobufCMessageDescriptor *d = msg->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    if (f->type != PROTOBUF_C_TYPE_ENUM ||
        f->label == PROTOBUF_C_LABEL_REPEATED)
      continue;
    char buf[64];
    int v = *(const int *)((const char *)msg + f->offset);
    const char *s = cli_pbjson_enum_short(f->descriptor, v, buf, sizeof(buf));
    FUZZ_CHECK(s == buf && memchr(buf, '\0', sizeof(buf)) != NULL);
  }
  protobuf_c_message_free_unpacked(msg, NULL);
  return 0;
}
