package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keybuzz/keybuzz-amazon/shared/marketplace"
)

// CreateAppstoreLogin records a log-in and drops expired ones.
func (s *Store) CreateAppstoreLogin(ctx context.Context, l marketplace.AppstoreLogin) error {
	_, err := s.pool.Exec(ctx, `
		WITH expired AS (DELETE FROM keybuzz_amazon."AppstoreLogin" WHERE "expiresAt" < $7)
		INSERT INTO keybuzz_amazon."AppstoreLogin" ("loginHash", "amazonCallbackUri", "amazonState", "sellingPartnerId", "version", "expiresAt")
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), $6)`,
		l.LoginHash, l.AmazonCallbackURI, l.AmazonState, l.SellingPartnerID, l.Version, l.ExpiresAt, s.now())
	return unavailable("record appstore log-in", err)
}

// ConsumeAppstoreLogin marks a log-in used, atomically; unknown, used or
// expired ones are marketplace.ErrInvalidState.
func (s *Store) ConsumeAppstoreLogin(ctx context.Context, loginHash string) (marketplace.AppstoreLogin, error) {
	l := marketplace.AppstoreLogin{LoginHash: loginHash}
	err := s.pool.QueryRow(ctx, `
		UPDATE keybuzz_amazon."AppstoreLogin" SET "consumedAt" = $2
		WHERE "loginHash" = $1 AND "consumedAt" IS NULL AND "expiresAt" > $2
		RETURNING "amazonCallbackUri", "amazonState", COALESCE("sellingPartnerId", ''), COALESCE("version", ''), "expiresAt"`,
		loginHash, s.now()).Scan(&l.AmazonCallbackURI, &l.AmazonState, &l.SellingPartnerID, &l.Version, &l.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return marketplace.AppstoreLogin{}, fmt.Errorf("appstore log-in: %w", marketplace.ErrInvalidState)
	}
	if err != nil {
		return marketplace.AppstoreLogin{}, unavailable("appstore log-in", err)
	}
	return l, nil
}
