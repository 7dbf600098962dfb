// Package faults is chattap's fault suite: chattap runs as child
// processes beside nats-server processes, fake upstreams and a
// Segment-compatible receiver; a load drives conversations of every flow
// while one fault is injected, and what reached the receiver is compared
// with chattap's own mapping of the recorded exchanges (the oracle).
//
// The suite is behind the build tag faults:
//
//	go test -tags faults -count=1 -v ./faults/                    # short (CI)
//	go test -tags faults -count=1 -v ./faults/ -faults.long -timeout 60m
//	go test -tags faults -count=1 ./faults/ -faults.report=rows.md
//
// See RELIABILITY.md for what the cases assert and the figures of a run.
package faults
