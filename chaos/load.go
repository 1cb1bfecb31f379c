package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keybuzz/keybuzz-amazon/shared/httpapi"
)

// LoadResult is the API under a bounded load generator.
type LoadResult struct {
	Requests    int            `json:"requests"`
	Concurrency int            `json:"concurrency"`
	VaultDelay  string         `json:"vaultDelay"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"perSecond"`
	Status      map[string]int `json:"status"` // by route and code
	P50, P95    float64        // milliseconds
	P99, Max    float64
}

// loadAPI sends n requests (status and start, alternately, for random
// tenants) with at most c in flight to the API on loopback while Vault
// answers through a proxy that delays every request by vaultDelay.
func (w *world) loadAPI(ctx context.Context, n, c int, vaultDelay time.Duration) (LoadResult, error) {
	res := LoadResult{Requests: n, Concurrency: c, VaultDelay: vaultDelay.String(), Status: map[string]int{}}
	w.vproxy.SetDelay(vaultDelay)
	defer w.vproxy.SetDelay(0)
	toks := make([]string, len(w.tenants))
	for i, t := range w.tenants {
		tok, err := w.token(t.id)
		if err != nil {
			return res, err
		}
		toks[i] = tok
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	var (
		mu   sync.Mutex
		lats []float64
		next atomic.Int64
		wg   sync.WaitGroup
	)
	t0 := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				route, method, path := "status", http.MethodGet, httpapi.StatusPath
				if i%2 == 1 {
					route, method, path = "start", http.MethodPost, httpapi.StartPath
				}
				req, _ := http.NewRequestWithContext(ctx, method, w.apiServer.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+toks[w.intN(len(toks))])
				s := time.Now()
				resp, err := client.Do(req)
				lat := float64(time.Since(s).Microseconds()) / 1000
				key := route + " error"
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					key = fmt.Sprintf("%s %d", route, resp.StatusCode)
				}
				mu.Lock()
				lats = append(lats, lat)
				res.Status[key]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(t0).Seconds()
	res.PerSecond = float64(len(lats)) / res.Seconds
	sort.Float64s(lats)
	q := func(p float64) float64 {
		if len(lats) == 0 {
			return 0
		}
		return lats[min(len(lats)-1, int(p*float64(len(lats))))]
	}
	res.P50, res.P95, res.P99, res.Max = q(0.50), q(0.95), q(0.99), q(1)
	return res, nil
}
