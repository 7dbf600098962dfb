package sinks_test

import (
	"fmt"
	"net/http"

	"github.com/chattap/chattap/sinks"
)

func ExampleParseHeaders() {
	h, _ := sinks.ParseHeaders("Authorization: Bearer t0ken, Accept: application/json, text/plain\nX-Team: data")
	fmt.Println(h.Get("Authorization"))
	fmt.Println(h.Get("Accept"))
	fmt.Println(h.Get("X-Team"))
	// Output:
	// Bearer t0ken
	// application/json, text/plain
	// data
}

func ExampleClassifyStatus() {
	for _, code := range []int{200, 400, 429, 503} {
		err := sinks.ClassifyStatus(code, http.Header{"Retry-After": {"30"}}, "")
		fmt.Printf("%d: permanent=%v retry after=%v\n", code, sinks.IsPermanent(err), sinks.RetryAfterOf(err))
	}
	// Output:
	// 200: permanent=false retry after=0s
	// 400: permanent=true retry after=0s
	// 429: permanent=false retry after=30s
	// 503: permanent=false retry after=30s
}
