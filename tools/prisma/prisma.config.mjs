// Prisma 7 configuration for KeyBuzz's schema (schema.prisma). The URL is
// DATABASE_URL; the schema engine is the WebAssembly one, started through
// schema-engine.mjs (PRISMA_SCHEMA_ENGINE_BINARY), since the native engine
// cannot be downloaded here.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "schema.prisma",
  datasource: { url: process.env.DATABASE_URL ?? "" },
});
