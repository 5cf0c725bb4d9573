// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* I/O stall sensor, kernel half: block request latency (issue -> complete) aggregated per
 * device in a log-linear histogram, plus I/O per (device, cgroup). Nothing per request crosses
 * to userspace; it reads the maps once per interval and scans `inflight` for the oldest
 * request, so a request that never completes is seen too. */
#include "mend_common.bpf.h"
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u64 slow_us = 100000; /* completions this slow are counted per cgroup as slow */

MEND_DEFINE_STATS();

struct inflight_val {
	__u64 issue_ns;
	__u64 cgroup_id;
	__u32 major;
	__u32 minor;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct request * */
	__type(value, struct inflight_val);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
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

/* Max latency per device since userspace last read (and deleted) it. Separate from dev_lat so
 * that the reset cannot clobber counts: a completion racing the delete under-reports one
 * interval's max, nothing else. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct mend_dev_key);
	__type(value, __u64);
} dev_max SEC(".maps");

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

SEC("tp_btf/block_rq_issue")
int BPF_PROG(handle_rq_issue, struct request *rq)
{
	struct gendisk *disk = rq_disk(rq);
	if (!disk)
		return 0;
	struct inflight_val v = {
	    .issue_ns = bpf_ktime_get_ns(),
	    .cgroup_id = rq_cgroup_id(rq),
	    .major = BPF_CORE_READ(disk, major),
	    .minor = BPF_CORE_READ(disk, first_minor),
	};
	__u64 key = (__u64)rq;
	if (bpf_map_update_elem(&inflight, &key, &v, BPF_ANY) != 0)
		mend_stat_inc(&stats, MEND_STAT_MAP_FULL);
	return 0;
}

SEC("tp_btf/block_rq_requeue")
int BPF_PROG(handle_rq_requeue, struct request *rq)
{
	__u64 key = (__u64)rq;
	bpf_map_delete_elem(&inflight, &key);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(handle_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct inflight_val *in = bpf_map_lookup_elem(&inflight, &key);
	if (!in)
		return 0;
	struct inflight_val v = *in;
	bpf_map_delete_elem(&inflight, &key);

	__u64 now = bpf_ktime_get_ns();
	__u64 us = now > v.issue_ns ? (now - v.issue_ns) / 1000 : 0;

	struct mend_dev_key dk = {.major = v.major, .minor = v.minor};
	struct mend_dev_lat *lat = bpf_map_lookup_elem(&dev_lat, &dk);
	if (!lat) {
		bpf_map_update_elem(&dev_lat, &dk, &zero_lat, BPF_NOEXIST);
		lat = bpf_map_lookup_elem(&dev_lat, &dk);
		if (!lat) {
			mend_stat_inc(&stats, MEND_STAT_MAP_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&lat->count, 1);
	__sync_fetch_and_add(&lat->sum_us, us);
	__u64 *mx = bpf_map_lookup_elem(&dev_max, &dk);
	if (!mx)
		bpf_map_update_elem(&dev_max, &dk, &us, BPF_NOEXIST);
	else if (us > *mx)
		*mx = us; /* racy by design: a lost update under-reports one interval's max */
	__u32 b = mend_hist_bucket(us);
	if (b < MEND_HIST_BUCKETS)
		__sync_fetch_and_add(&lat->hist[b], 1);
	int slow = us >= slow_us;
	if (slow)
		__sync_fetch_and_add(&lat->slow, 1);

	struct mend_io_cg_key ck = {.cgroup_id = v.cgroup_id, .major = v.major, .minor = v.minor};
	struct mend_io_cg_val *cv = bpf_map_lookup_elem(&io_cg, &ck);
	if (!cv) {
		struct mend_io_cg_val init = {};
		bpf_map_update_elem(&io_cg, &ck, &init, BPF_NOEXIST);
		cv = bpf_map_lookup_elem(&io_cg, &ck);
		if (!cv)
			return 0;
	}
	__sync_fetch_and_add(&cv->ios, 1);
	__sync_fetch_and_add(&cv->bytes, BPF_CORE_READ(rq, __data_len));
	if (slow)
		__sync_fetch_and_add(&cv->slow_ios, 1);
	return 0;
}
