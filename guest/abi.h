/*
 * What the guest and the host both read about the envelope ABI (guest/ABI.md): the io block's
 * layout and the mark of a memory-cap trap. One copy, included by guest/shim/ and by
 * runtime/sandbox/instance.c, so the two sides cannot drift apart.
 */
#ifndef WEXEC_ABI_H
#define WEXEC_ABI_H

/* Indices of the io block, five u32 words whose address wx_io returns. */
enum { IO_IN_PTR, IO_IN_CAP, IO_OUT_PTR, IO_OUT_JSON, IO_OUT_BLOB };

/* out_json the guest leaves before trapping past its memory cap. */
#define OOM_MARK 0xFFFFFFFFu

#endif
