package spapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/keybuzz/keybuzz-amazon/shared/spapi"
)

func TestGetOrderAgainstSandbox(t *testing.T) {
	sb, url, tokens := sellerTokens(t)
	seller := sb.Sellers()[0]
	id, err := sb.AddOrder(seller.ID, "", true)
	if err != nil {
		t.Fatal(err)
	}
	c := spapi.New()
	o, err := c.GetOrder(context.Background(), url, tokens, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	// buyerEmail only for a seller-fulfilled order (the Orders model).
	if o.OrderID != id || o.Buyer == nil || (o.Buyer.BuyerEmail != "") != sb.SellerFulfilled(seller.ID, id) || len(o.OrderItems) == 0 || len(o.Raw) == 0 ||
		o.OrderItems[0].Cancellation == nil || o.OrderItems[0].Cancellation.CancellationRequest.Requester != "BUYER" {
		t.Fatalf("order not decoded with BUYER and CANCELLATION: %+v", o)
	}
	// Without the datasets, no buyer.
	bare, err := c.GetOrder(context.Background(), url, tokens, id, []string{})
	if err != nil || bare.OrderID != id || bare.Buyer != nil {
		t.Fatalf("bare order %+v, %v", bare, err)
	}
	if sb.Stats(seller.ID).Calls[spapi.OpGetOrder] != 2 {
		t.Fatalf("calls %v", sb.Stats(seller.ID).Calls)
	}

	_, err = c.GetOrder(context.Background(), url, tokens, "402-0000000-0000000", nil)
	var e *spapi.Error
	if !errors.Is(err, spapi.ErrNotFound) || !errors.As(err, &e) || e.Status != 404 || spapi.Transient(err) {
		t.Fatalf("unknown order: %v", err)
	}
	if _, err := c.GetOrder(context.Background(), url, tokens, " ", nil); err == nil {
		t.Fatal("empty order id accepted")
	}
}

// The order id is one path segment, escaped; includedData is one
// comma-separated value.
func TestGetOrderRequest(t *testing.T) {
	var path, rawQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, rawQuery = r.URL.EscapedPath(), r.URL.RawQuery
		w.Write([]byte(`{"order":{"orderId":"a/b","createdTime":"2026-01-01T00:00:00Z","lastUpdatedTime":"2026-01-01T00:00:00Z"}}`))
	}))
	defer srv.Close()
	o, err := spapi.New().GetOrder(context.Background(), srv.URL, staticTokens{}, "a/b", nil)
	if err != nil || o.OrderID != "a/b" {
		t.Fatalf("%+v, %v", o, err)
	}
	if path != "/orders/2026-01-01/orders/a%2Fb" || rawQuery != "includedData=BUYER%2CCANCELLATION" {
		t.Fatalf("path %q query %q", path, rawQuery)
	}
}
