package realapp

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/junction-sre/junction/internal/pgtest"
)

// createDatabase creates a database owned by a login role of the same
// name, with the table the inventory service reads.
func createDatabase(ctx context.Context, pg *pgtest.Server, name string) error {
	admin, err := pgx.Connect(ctx, pg.DSN("postgres", "postgres"))
	if err != nil {
		return fmt.Errorf("connecting to %s as postgres: %w", pg.Addr(), err)
	}
	defer admin.Close(context.Background())
	for _, s := range []string{
		"CREATE ROLE " + pgx.Identifier{name}.Sanitize() + " LOGIN NOSUPERUSER",
		"CREATE DATABASE " + pgx.Identifier{name}.Sanitize() + " OWNER " + pgx.Identifier{name}.Sanitize(),
	} {
		if _, err := admin.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	c, err := pgx.Connect(ctx, pg.DSN(name, name))
	if err != nil {
		return fmt.Errorf("connecting to database %s: %w", name, err)
	}
	defer c.Close(context.Background())
	for _, s := range []string{
		"CREATE TABLE stock (sku int PRIMARY KEY, count int NOT NULL)",
		"INSERT INTO stock SELECT g, 100 FROM generate_series(1, 100) g",
	} {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}
