package spec

import (
	"strconv"
	"strings"
)

// RawPartitions is how many partitions CHATTAP_RAW is split into. Every
// record of a conversation lands in the same partition, and each partition
// is mapped by one mapper replica at a time, in stream order, so a
// partition is the unit of both ordering and scale-out.
//
// It is fixed: a record's partition is part of its subject, so changing
// the number would scatter a live conversation over two partitions with
// two owners. Sixteen spreads the work of up to sixteen mapper replicas
// and costs sixteen durable consumers on the server.
const RawPartitions = 16

// Partition is the partition of the conversation with this id: FNV-1a
// (32 bits) of the id, modulo RawPartitions. It is stable across versions
// and processes, and every stage that needs it calls this function. A
// record that names no conversation is partitioned by its own id.
func Partition(conversationID string) int {
	const (
		offset = 2166136261
		prime  = 16777619
	)
	h := uint32(offset)
	for i := 0; i < len(conversationID); i++ {
		h ^= uint32(conversationID[i])
		h *= prime
	}
	return int(h % RawPartitions)
}

// RawPartitionSubject is the subject a record of partition p, first seen
// on source as kind, is published on: chattap.raw.<p>.<source>.<kind>,
// with p in decimal and kind reduced to safe tokens as RawSubject does.
// Version 1 Observations, one per event, were published on
// chattap.raw.<source>.<kind> (RawSubject); the partition token, a number,
// never collides with a source's first token.
func RawPartitionSubject(p int, source Source, kind string) string {
	return SubjectRawPrefix + strconv.Itoa(p) + "." + strings.TrimPrefix(RawSubject(source, kind), SubjectRawPrefix)
}

// RawPartitionFilter is the filter subject of partition p's records:
// chattap.raw.<p>.>.
func RawPartitionFilter(p int) string {
	return SubjectRawPrefix + strconv.Itoa(p) + ".>"
}

// RawLegacyFilters are the filter subjects of version 1 Observations,
// stored before records were partitioned: one per first token of a Source.
var RawLegacyFilters = []string{SubjectRawPrefix + "chatbot.>", SubjectRawPrefix + "channel.>", SubjectRawPrefix + "addon.>"}
