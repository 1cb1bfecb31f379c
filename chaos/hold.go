package main

import (
	"net/http"
	"sync"
)

// hold is a delay hook on an HTTP path: armed with a predicate, the first
// request matching it is held (not answered) and reported on arrived, so
// that the harness can kill the process that sent it while it waits; then
// release drops the held request's connection (its sender is dead).
type hold struct {
	mu  sync.Mutex
	cur *armed
}

type armed struct {
	pred    func(*http.Request) bool
	arrived chan struct{}
	release chan struct{}
	once    sync.Once
}

// arm sets the predicate; the returned channel is closed when a matching
// request is being held, the func releases it (and disarms).
func (h *hold) arm(pred func(*http.Request) bool) (<-chan struct{}, func()) {
	a := &armed{pred: pred, arrived: make(chan struct{}), release: make(chan struct{})}
	h.mu.Lock()
	h.cur = a
	h.mu.Unlock()
	return a.arrived, func() {
		h.mu.Lock()
		if h.cur == a {
			h.cur = nil
		}
		h.mu.Unlock()
		a.once.Do(func() { close(a.release) })
	}
}

// catch holds r when it matches the armed predicate, and reports whether
// it did (the caller then answers nothing).
func (h *hold) catch(w http.ResponseWriter, r *http.Request) bool {
	h.mu.Lock()
	a := h.cur
	if a == nil || !a.pred(r) {
		h.mu.Unlock()
		return false
	}
	h.cur = nil
	h.mu.Unlock()
	close(a.arrived)
	select {
	case <-a.release:
	case <-r.Context().Done():
	}
	if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
		c.Close()
	}
	return true
}

// holding wraps next with a hold.
func holding(h *hold, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.catch(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
