// Starts fauxqs (pinned in package.json) on loopback only, for the local stack.
//
// fauxqs's own CLI always listens on 0.0.0.0 and forces request logging on,
// and FAUXQS_HOST turns queue URLs into sqs.<region>.<host> names that do not
// resolve locally. This launcher uses the same building blocks as
// startFauxqs() but binds FAUXQS_LISTEN (default 127.0.0.1), honours
// FAUXQS_LOGGER=false and keeps queue URLs as http://127.0.0.1:<port>/....
//
// Environment: FAUXQS_PORT, FAUXQS_LISTEN, FAUXQS_DEFAULT_REGION, FAUXQS_LOGGER, FAUXQS_INIT.
import { buildApp } from "fauxqs";
const dist = new URL("./node_modules/fauxqs/dist/", import.meta.url);
const { SqsStore } = await import(new URL("sqs/sqsStore.js", dist));
const { SnsStore } = await import(new URL("sns/snsStore.js", dist));
const { S3Store } = await import(new URL("s3/s3Store.js", dist));
const { loadInitConfig, applyInitConfig } = await import(new URL("initConfig.js", dist));

const port = parseInt(process.env.FAUXQS_PORT ?? "4566", 10);
const listen = process.env.FAUXQS_LISTEN ?? "127.0.0.1";
const region = process.env.FAUXQS_DEFAULT_REGION ?? "eu-west-1";
const logger = (process.env.FAUXQS_LOGGER ?? "false") !== "false";

const stores = { sqsStore: new SqsStore(), snsStore: new SnsStore(), s3Store: new S3Store() };
stores.sqsStore.region = region;
stores.sqsStore.host = ""; // queue URLs use the request host: http://127.0.0.1:<port>/000000000000/<name>
stores.snsStore.region = region;
const app = buildApp({ logger, defaultRegion: region, stores });
const address = await app.listen({ port, host: listen });
const actualPort = new URL(address).port;
if (process.env.FAUXQS_INIT) {
  applyInitConfig(loadInitConfig(process.env.FAUXQS_INIT), stores.sqsStore, stores.snsStore, stores.s3Store, {
    port: actualPort,
    region,
  });
}
console.log(`listening on http://${listen}:${actualPort}`);

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => app.close().finally(() => process.exit(0)));
}
