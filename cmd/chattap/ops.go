package main

import (
	"context"
	"errors"
	"io"
)

func runTail(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	return errors.New("tail: not wired yet")
}

func runReplay(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	return errors.New("replay: not wired yet")
}

func runDLQ(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	return errors.New("dlq: not wired yet")
}
