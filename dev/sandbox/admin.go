package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Admin HTTP API under /_sandbox/ (JSON in, JSON out). It only drives the
// sandbox; nothing of it exists at Amazon.
func (s *Server) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /_sandbox/sellers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellers": s.Sellers()})
	})
	m.HandleFunc("POST /_sandbox/sellers/{id}/revoke", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		s.RevokeSeller(id)
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "revoked": true})
	}))
	m.HandleFunc("POST /_sandbox/sellers/{id}/expire-access-tokens", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		s.ExpireAccessTokens(id)
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "accessTokensExpired": true})
	}))
	m.HandleFunc("PUT /_sandbox/sellers/{id}/rotate-refresh-tokens", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			On bool `json:"on"`
		}
		if !decode(w, r, &in) {
			return
		}
		s.RotateRefreshTokens(id, in.On)
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"sellerId": id, "rotate": in.On})
	}))
	m.HandleFunc("POST /_sandbox/sellers/{id}/refresh-tokens", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		tok, err := s.IssueRefreshToken(id)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, jsonType, map[string]any{"sellerId": id, "refreshToken": tok})
	}))
	m.HandleFunc("PUT /_sandbox/sellers/{id}/rate-plan", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Operation string  `json:"operation"`
			Rate      float64 `json:"rate"`
			Burst     int     `json:"burst"`
		}
		if !decode(w, r, &in) {
			return
		}
		if err := validPlan(in.Operation, in.Rate, in.Burst); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.SetRatePlan(id, in.Operation, in.Rate, in.Burst)
		writeJSON(w, http.StatusOK, jsonType, in)
	}))
	m.HandleFunc("POST /_sandbox/sellers/{id}/faults", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			Kind    string `json:"kind"`
			Count   int    `json:"count"`
			DelayMs int64  `json:"delayMs"`
		}
		if !decode(w, r, &in) {
			return
		}
		f := Fault{Kind: in.Kind, Count: in.Count, Delay: time.Duration(in.DelayMs) * time.Millisecond}
		if err := validFault(f); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.InjectFault(id, f)
		writeJSON(w, http.StatusOK, jsonType, in)
	}))
	m.HandleFunc("POST /_sandbox/sellers/{id}/orders", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			MarketplaceID    string `json:"marketplaceId"`
			WithCancellation bool   `json:"withCancellation"`
		}
		if !decode(w, r, &in) {
			return
		}
		orderID, err := s.AddOrder(id, in.MarketplaceID, in.WithCancellation)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, jsonType, map[string]any{"orderId": orderID})
	}))
	m.HandleFunc("POST /_sandbox/sellers/{id}/cancellation-requests", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		var in struct {
			OrderID string `json:"orderId"`
			Reason  string `json:"reason"`
		}
		if !decode(w, r, &in) {
			return
		}
		ev, err := s.AddCancellationRequest(id, in.OrderID, in.Reason)
		if err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusCreated, jsonType, ev)
	}))
	m.HandleFunc("GET /_sandbox/sellers/{id}/events", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		ev := s.BuyerEvents(id)
		if ev == nil {
			ev = []Event{}
		}
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"events": ev})
	}))
	m.HandleFunc("GET /_sandbox/sellers/{id}/stats", s.withSeller(func(w http.ResponseWriter, r *http.Request, id string) {
		writeJSON(w, http.StatusOK, jsonType, s.Stats(id))
	}))
	m.HandleFunc("GET /_sandbox/clock", func(w http.ResponseWriter, r *http.Request) {
		_, manual := s.clock.(*ManualClock)
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"now": s.now().Format(time.RFC3339Nano), "manual": manual})
	})
	m.HandleFunc("POST /_sandbox/clock/advance", func(w http.ResponseWriter, r *http.Request) {
		mc, ok := s.clock.(*ManualClock)
		if !ok {
			adminError(w, http.StatusConflict, "the sandbox runs on real time; start it with --manual-clock")
			return
		}
		var in struct {
			Seconds float64 `json:"seconds"`
		}
		if !decode(w, r, &in) {
			return
		}
		if in.Seconds < 0 {
			adminError(w, http.StatusBadRequest, "seconds must be >= 0")
			return
		}
		mc.Advance(time.Duration(in.Seconds * float64(time.Second)))
		writeJSON(w, http.StatusOK, jsonType, map[string]any{"now": s.now().Format(time.RFC3339Nano), "manual": true})
	})
}

func validFault(f Fault) error {
	switch f.Kind {
	case "500", "503", "429", "slow", "drop":
	default:
		return fmt.Errorf("kind must be one of 500, 503, 429, slow, drop")
	}
	if f.Count < 0 || f.Delay < 0 {
		return fmt.Errorf("count and delay must be >= 0")
	}
	return nil
}

func (s *Server) withSeller(h func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := s.seller(id); !ok {
			adminError(w, http.StatusNotFound, fmt.Sprintf("unknown seller %q", id))
			return
		}
		h(w, r, id)
	}
}

// decode reads an optional JSON body into v; an empty body leaves v zero.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		adminError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, jsonType, map[string]string{"error": msg})
}
