package sandbox

import (
	"fmt"
	"math"
	"time"
)

// ratePlan is a usage plan: rate tokens per second, bucket of burst tokens.
type ratePlan struct {
	rate  float64
	burst int
}

// defaultPlans are the usage plans of the Orders v2026-01-01 and Sellers v1
// models.
var defaultPlans = map[string]ratePlan{
	OpSearchOrders:                 {rate: 0.0056, burst: 20},
	OpGetOrder:                     {rate: 0.5, burst: 30},
	OpGetMarketplaceParticipations: {rate: 0.016, burst: 15},
	OpGetAccount:                   {rate: 0.016, burst: 15},
	OpCreateDestination:            {rate: 1, burst: 5},
	OpGetDestinations:              {rate: 1, burst: 5},
	OpCreateSubscription:           {rate: 1, burst: 5},
	OpGetSubscription:              {rate: 1, burst: 5},
	OpDeleteSubscriptionByID:       {rate: 1, burst: 5},
}

type bucketKey struct{ app, seller, op string }

// bucket counts in nano-tokens so that refills over many small clock steps
// do not drift.
type bucket struct {
	nanoTokens int64
	last       time.Time
}

const nano = int64(1e9)

// SetRatePlan overrides the usage plan of one operation ("searchOrders",
// "getOrder", "getMarketplaceParticipations" or "getAccount") for a seller; the bucket
// restarts full.
func (s *Server) SetRatePlan(sellerID, operation string, rate float64, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := bucketKey{s.cfg.ClientID, sellerID, operation}
	s.plans[k] = ratePlan{rate: rate, burst: burst}
	delete(s.buckets, k)
}

func validPlan(operation string, rate float64, burst int) error {
	if _, ok := defaultPlans[operation]; !ok {
		return fmt.Errorf("unknown operation %q", operation)
	}
	if rate < 0 || math.IsNaN(rate) || math.IsInf(rate, 0) || burst < 1 {
		return fmt.Errorf("rate must be >= 0 and burst >= 1")
	}
	return nil
}

// take spends one token of the seller's bucket for op; it returns the plan's
// rate and whether the call is admitted. Tokens refill continuously on the
// sandbox clock: tokens = min(burst, tokens + rate*elapsed).
func (s *Server) take(sellerID, op string) (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := bucketKey{s.cfg.ClientID, sellerID, op}
	plan, ok := s.plans[k]
	if !ok {
		plan = defaultPlans[op]
	}
	now := s.now()
	capacity := int64(plan.burst) * nano
	b := s.buckets[k]
	if b == nil {
		b = &bucket{nanoTokens: capacity, last: now}
		s.buckets[k] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		refill := math.Round(plan.rate * float64(elapsed.Nanoseconds()))
		if refill >= float64(capacity) {
			b.nanoTokens = capacity
		} else {
			b.nanoTokens = min(capacity, b.nanoTokens+int64(refill))
		}
		b.last = now
	}
	st := s.statsLocked(sellerID)
	if b.nanoTokens < nano {
		st.Throttled++
		return plan.rate, false
	}
	b.nanoTokens -= nano
	return plan.rate, true
}

// InjectFault makes the next f.Count SP-API calls of the seller fail as f.Kind says.
func (s *Server) InjectFault(sellerID string, f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[sellerID] = append(s.faults[sellerID], f)
}

// nextFault counts the call and pops one pending fault of the seller, if any.
func (s *Server) nextFault(sellerID, op string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statsLocked(sellerID)
	st.Calls[op]++
	q := s.faults[sellerID]
	if len(q) == 0 {
		return Fault{}, false
	}
	f := q[0]
	q[0].Count--
	if q[0].Count <= 0 {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(s.faults, sellerID)
	} else {
		s.faults[sellerID] = q
	}
	st.FaultsServed++
	return f, true
}
