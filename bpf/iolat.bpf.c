// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* I/O stall sensor, kernel half. One program, on block_rq_complete: the request's latency is
 * now - rq->start_time_ns (stamped by the block layer when the request is allocated, for every
 * device with iostats on, the default), so no per-request map is needed and the issue path is
 * not touched. Per device and per CPU: a log-linear histogram, the count, the slow count and
 * the max of the current epoch. Per (device, cgroup): slow completions only, so a healthy
 * device costs one per-CPU map lookup per request. Nothing per request reaches userspace. */
#include "mend_common.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 slow_us = 100000; /* completions this slow are attributed to cgroups */

/* Userspace advances the epoch after each read; max_us restarts with it. */
volatile __u64 epoch = 0;

MEND_DEFINE_STATS();

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 256);
	__type(key, struct mend_dev_key);
	__type(value, struct mend_dev_lat);
} dev_lat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct mend_io_cg_key);
	__type(value, struct mend_io_cg_val);
} io_cg SEC(".maps");

static const struct mend_dev_lat zero_lat;

/* Kernel 5.17 (commit f3fa33acca9f "block: remove the ->rq_disk field in struct request")
 * moved the disk to rq->q->disk. */
struct request___pre517 {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *rq_disk(struct request *rq)
{
	if (bpf_core_field_exists(((struct request___pre517 *)0)->rq_disk))
		return BPF_CORE_READ((struct request___pre517 *)rq, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

static __always_inline __u64 rq_cgroup_id(struct request *rq)
{
	/* The blkcg the bio was charged to: the issuer even when a kworker or the loop driver
	 * submits it. Absent without CONFIG_BLK_CGROUP. */
	if (!bpf_core_field_exists(((struct bio *)0)->bi_blkg))
		return 0;
	struct blkcg_gq *blkg = BPF_CORE_READ(rq, bio, bi_blkg);
	if (!blkg)
		return 0;
	return BPF_CORE_READ(blkg, blkcg, css.cgroup, kn, id);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(handle_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 start = BPF_CORE_READ(rq, start_time_ns);
	struct gendisk *disk = rq_disk(rq);
	if (!disk)
		return 0;
	struct mend_dev_key dk = {
	    .major = BPF_CORE_READ(disk, major),
	    .minor = BPF_CORE_READ(disk, first_minor),
	};
	struct mend_dev_lat *lat = bpf_map_lookup_elem(&dev_lat, &dk);
	if (!lat) {
		bpf_map_update_elem(&dev_lat, &dk, &zero_lat, BPF_NOEXIST);
		lat = bpf_map_lookup_elem(&dev_lat, &dk);
		if (!lat) {
			mend_stat_inc(&stats, MEND_STAT_MAP_FULL);
			return 0;
		}
	}
	if (!start) {
		lat->untimed++; /* iostats off for this device: no timestamp to measure from */
		return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 us = now > start ? (now - start) / 1000 : 0;

	/* Per-CPU value: plain increments, no atomics, no cache line bouncing. */
	lat->count++;
	lat->sum_us += us;
	__u32 b = mend_hist_bucket(us);
	if (b < MEND_HIST_BUCKETS)
		lat->hist[b]++;
	__u64 ep = epoch;
	if (lat->max_epoch != ep) {
		lat->max_epoch = ep;
		lat->max_us = us;
	} else if (us > lat->max_us) {
		lat->max_us = us;
	}
	if (us < slow_us)
		return 0;
	lat->slow++;

	struct mend_io_cg_key ck = {
	    .cgroup_id = rq_cgroup_id(rq), .major = dk.major, .minor = dk.minor};
	struct mend_io_cg_val *cv = bpf_map_lookup_elem(&io_cg, &ck);
	if (!cv) {
		struct mend_io_cg_val init = {};
		bpf_map_update_elem(&io_cg, &ck, &init, BPF_NOEXIST);
		cv = bpf_map_lookup_elem(&io_cg, &ck);
		if (!cv)
			return 0;
	}
	__sync_fetch_and_add(&cv->slow_ios, 1);
	__sync_fetch_and_add(&cv->bytes, BPF_CORE_READ(rq, __data_len));
	return 0;
}
