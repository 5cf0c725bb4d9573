/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Helpers shared by mend's BPF programs: CO-RE fixes for renamed kernel fields, cgroup path
 * capture, the log-linear latency bucket and the per-sensor stats counters. */
#ifndef MEND_COMMON_BPF_H
#define MEND_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include "mend_events.h"

/* Kernel 6.15 (commit "kernfs: Use RCU to access kernfs_node::parent") renamed
 * kernfs_node::parent to __parent. */
struct kernfs_node___pre615 {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *mend_kn_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(kn->__parent))
		return BPF_CORE_READ(kn, __parent);
	return BPF_CORE_READ((struct kernfs_node___pre615 *)kn, parent);
}

/* Captures the path of `cgrp` leaf first. The root cgroup has no parent and its name is not
 * part of the path, so it is not stored: depth 0 means "/". */
static __always_inline void mend_capture_cgroup(struct cgroup *cgrp, struct mend_cgroup_path *out)
{
	struct kernfs_node *kn = BPF_CORE_READ(cgrp, kn);
	__u32 depth = 0;

	out->truncated = 0;
#pragma unroll
	for (int i = 0; i < MEND_CG_LEVELS; i++) {
		if (!kn)
			break;
		struct kernfs_node *parent = mend_kn_parent(kn);
		if (!parent)
			break; /* kn is the hierarchy root */
		const char *name = BPF_CORE_READ(kn, name);
		bpf_probe_read_kernel_str(out->names[i], MEND_CG_NAME_LEN, name);
		depth++;
		kn = parent;
	}
	if (kn && mend_kn_parent(kn))
		out->truncated = 1;
	out->depth = depth;
}

/* Stats counters: one per-CPU array per program object, indexed by enum mend_stat. */
#define MEND_DEFINE_STATS()                                                                        \
	struct {                                                                                   \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                                           \
		__uint(max_entries, MEND_STAT_MAX);                                                \
		__type(key, __u32);                                                                \
		__type(value, __u64);                                                              \
	} stats SEC(".maps")

static __always_inline void mend_stat_inc(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		*v += 1;
}

/* Log-linear bucket of a latency in microseconds: values below 4 have their own bucket, above
 * that each power of two is split in 4, so p99 is known within 25% instead of 2x. */
static __always_inline __u32 mend_hist_bucket(__u64 us)
{
	if (us < 4)
		return (__u32)us;
	/* floor(log2(us)) by halving: BPF has no count-leading-zeros and clang 14 crashes
	 * lowering __builtin_clzll for it. */
	__u32 p = 0;
	__u64 v = us;
	if (v >> 32) {
		v >>= 32;
		p += 32;
	}
	if (v >> 16) {
		v >>= 16;
		p += 16;
	}
	if (v >> 8) {
		v >>= 8;
		p += 8;
	}
	if (v >> 4) {
		v >>= 4;
		p += 4;
	}
	if (v >> 2) {
		v >>= 2;
		p += 2;
	}
	if (v >> 1) {
		p += 1;
	}
	__u32 sub = (us >> (p - MEND_HIST_SUB_BITS)) & 3;
	__u32 b = 4 * (p - 1) + sub;
	return b < MEND_HIST_BUCKETS ? b : MEND_HIST_BUCKETS - 1;
}

static __always_inline __u32 mend_dev_major(dev_t dev)
{
	return dev >> 20;
}
static __always_inline __u32 mend_dev_minor(dev_t dev)
{
	return dev & ((1U << 20) - 1);
}

#endif
