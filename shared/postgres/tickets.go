package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// ListTickets returns a tenant's newest tickets with their message counts.
func (s *Store) ListTickets(ctx context.Context, tenantID string, limit int) ([]marketplace.TicketSummary, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT t."id", t."subject", t."status"::text, COALESCE(th."orderId", t."externalId", ''), t."customerName",
		       (SELECT count(*) FROM public."TicketMessage" m WHERE m."ticketId" = t."id")::int,
		       th."lastMessageAt", t."createdAt"
		FROM public."Ticket" t LEFT JOIN keybuzz_amazon."TicketThread" th ON th."ticketId" = t."id"
		WHERE t."tenantId" = $1
		ORDER BY th."lastMessageAt" DESC NULLS LAST, t."createdAt" DESC LIMIT $2`, tenantID, limit)
	if err != nil {
		return nil, unavailable("list tickets", err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (marketplace.TicketSummary, error) {
		var t marketplace.TicketSummary
		err := r.Scan(&t.ID, &t.Subject, &t.Status, &t.OrderID, &t.CustomerName, &t.Messages, &t.LastMessageAt, &t.CreatedAt)
		return t, err
	})
	return list, unavailable("list tickets", err)
}
