#!/usr/bin/env node
// KeyBuzz's own Prisma client (generated from schema.prisma: `prisma
// generate`), on DATABASE_URL through @prisma/adapter-pg, as KeyBuzz's
// backend uses it. dev/keybuzzclient's test runs it:
//
//   node keybuzz-client.mjs read
//     reads every row of every model the connector shares with KeyBuzz,
//     every field (Prisma validates each value against the schema: an enum
//     label or a type it does not know fails the read), and prints
//     {"counts": {model: rows}}.
//   node keybuzz-client.mjs write < {"tenantId", "pendingTenantId", "ticketId", "disableTenantId"}
//     makes the writes KeyBuzz's own services make on those tables and
//     prints the ids it created.
//
// Any Prisma error ends the program with status 1 and the error on stderr.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "package.json"));
const { PrismaClient } = require("@prisma/client");
const { PrismaPg } = require("@prisma/adapter-pg");

const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL }) });

// The models the connector reads or writes, and Tenant (their foreign keys
// point at it).
const shared = [
  "tenant",
  "marketplaceConnection",
  "marketplaceSyncState",
  "externalMessage",
  "ticket",
  "ticketMessage",
  "ticketEvent",
  "oAuthState",
  "marketplaceOutboundMessage",
  "inboundConnection",
  "inboundAddress",
];

async function read() {
  const counts = {};
  for (const model of shared) {
    const rows = await prisma[model].findMany();
    counts[model] = rows.length;
  }
  return { counts };
}

async function readStdin() {
  let s = "";
  for await (const chunk of process.stdin) s += chunk;
  return JSON.parse(s);
}

// What KeyBuzz's backend does on these tables (keybuzz-backend: its
// oauth/start, its ticket routes, its order and report syncs, its
// inbound-email path and its inbound address routes, its disconnect).
async function write(p) {
  const out = {};
  // Its oauth/start for a tenant the connector never saw: a PENDING
  // connection and a plain OAuthState.
  await prisma.tenant.upsert({ where: { id: p.pendingTenantId }, create: { id: p.pendingTenantId, slug: p.pendingTenantId, name: "KeyBuzz tenant" }, update: {} });
  const pending = await prisma.marketplaceConnection.create({
    data: { tenantId: p.pendingTenantId, type: "AMAZON", status: "PENDING", displayName: "Amazon (pending)", region: "EU" },
  });
  out.pendingConnectionId = pending.id;
  const state = await prisma.oAuthState.create({
    data: { marketplaceType: "AMAZON", state: "kb-state-" + pending.id, tenantId: p.pendingTenantId, connectionId: pending.id, expiresAt: new Date(Date.now() + 15 * 60 * 1000) },
  });
  out.oauthStateId = state.id;
  // An agent answers on a ticket the connector opened, and resolves it.
  const reply = await prisma.ticketMessage.create({
    data: { ticketId: p.ticketId, tenantId: p.tenantId, senderType: "AGENT", senderName: "Agent", body: "Bonjour, c'est en route.", source: "KEYBUZZ_UI", isInternal: false },
  });
  out.agentMessageId = reply.id;
  await prisma.ticketEvent.create({
    data: { ticketId: p.ticketId, tenantId: p.tenantId, type: "STATUS_CHANGED", actorType: "AGENT", payload: { to: "RESOLVED" } },
  });
  await prisma.ticket.update({ where: { id: p.ticketId }, data: { status: "RESOLVED", resolvedAt: new Date() } });
  // Its order and report syncs keep sync states under a synthetic
  // connectionId; its inbound-email path stores messages under a
  // connectionId that is no MarketplaceConnection.
  const sync = await prisma.marketplaceSyncState.create({
    data: { connectionId: "orders-sync-" + p.tenantId, tenantId: p.tenantId, type: "AMAZON", cursor: new Date().toISOString(), initialBackfillDays: 365, initialBackfillStatus: "in_progress" },
  });
  out.syncStateId = sync.id;
  const ext = await prisma.externalMessage.create({
    data: { tenantId: p.tenantId, connectionId: "inbound-email", type: "AMAZON", externalId: "<kb-" + p.tenantId + "@inbound.keybuzz.io>", receivedAt: new Date(), raw: { from: "buyer@marketplace.amazon.fr" } },
  });
  out.externalMessageId = ext.id;
  // Its inbound address routes: upserts on their uniques.
  const ic = await prisma.inboundConnection.upsert({
    where: { tenantId_marketplace: { tenantId: p.tenantId, marketplace: "amazon" } },
    create: { tenantId: p.tenantId, marketplace: "amazon", countries: ["FR", "DE"], status: "WAITING_EMAIL" },
    update: { countries: ["FR", "DE"], status: "WAITING_EMAIL" },
  });
  out.inboundConnectionId = ic.id;
  const ia = await prisma.inboundAddress.upsert({
    where: { tenantId_marketplace_country: { tenantId: p.tenantId, marketplace: "amazon", country: "DE" } },
    create: { connectionId: ic.id, tenantId: p.tenantId, marketplace: "amazon", country: "DE", token: "kbtok1", emailAddress: `amazon.${p.tenantId}.de.kbtok1@inbound.keybuzz.io` },
    update: { pipelineStatus: "PENDING" },
  });
  out.inboundAddressId = ia.id;
  // Its disconnect: DISABLED with "Disconnected by user".
  const r = await prisma.marketplaceConnection.updateMany({
    where: { tenantId: p.disableTenantId, type: "AMAZON" },
    data: { status: "DISABLED", lastError: "Disconnected by user" },
  });
  out.disabled = r.count;
  return out;
}

try {
  const cmd = process.argv[2];
  const result = cmd === "read" ? await read() : cmd === "write" ? await write(await readStdin()) : null;
  if (result === null) throw new Error(`unknown command ${cmd} (read or write)`);
  process.stdout.write(JSON.stringify(result) + "\n");
  await prisma.$disconnect();
} catch (e) {
  process.stderr.write(`${e?.code ?? ""} ${e?.message ?? e}\n`);
  await prisma.$disconnect().catch(() => {});
  process.exit(1);
}
