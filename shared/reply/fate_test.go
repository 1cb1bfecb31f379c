package reply

import "testing"

func TestApply(t *testing.T) {
	pending := Fate{StateSending, StatusPending}
	sent := Fate{StateAccepted, StatusSent}
	delivered := Fate{StateDelivered, StatusSent}
	failed := Fate{StateFailed, StatusFailed}
	tests := []struct {
		cur   Fate
		event string
		next  Fate
		te    string
	}{
		{pending, "Send", sent, "OUTBOUND_SENT"},
		{pending, "Delivery", delivered, "OUTBOUND_SENT"},
		{sent, "Delivery", delivered, ""},
		{delivered, "Send", delivered, ""}, // Send after Delivery: nothing
		{sent, "Send", sent, ""},           // duplicate
		{pending, "Bounce", failed, "OUTBOUND_FAILED"},
		{delivered, "Complaint", failed, "OUTBOUND_FAILED"},
		{sent, EventAmazonNotice, failed, "OUTBOUND_FAILED"},
		{failed, "Delivery", failed, ""}, // a FAILED reply stays FAILED
		{failed, "Bounce", failed, ""},
		{pending, "DeliveryDelay", pending, ""},
		{pending, "Open", pending, ""},
	}
	for _, tc := range tests {
		tr := Apply(tc.cur, tc.event)
		if tr.Next != tc.next || tr.TicketEvent != tc.te {
			t.Errorf("Apply(%v, %s) = %+v, want %v %q", tc.cur, tc.event, tr, tc.next, tc.te)
		}
	}
}
