// Package keybuzzamazon is the root of keybuzz-amazon, the AWS Lambda
// connector that links KeyBuzz tenants to their Amazon Seller Central
// accounts and turns what buyers do there into KeyBuzz tickets.
//
// The repository is a SAM application built from this one module:
//
//   - functions/oauthstart, functions/oauthcallback, functions/status: the
//     HTTP API routes under /api/v1/marketplaces/amazon (payload 2.0),
//     thin mains around http.Handlers from shared/;
//   - functions/pollfanout and functions/polltenant: the EventBridge schedule
//     that enqueues one poll job per connected tenant, and the SQS consumer
//     that polls Amazon and stores tickets;
//   - shared/: the domain and one package per dependency it adapts
//     (PostgreSQL, Vault, Amazon's LWA and SP-API, SQS, configuration);
//   - template.yaml, samconfig.toml and sam.mk: the deployment
//     (docs/deploy.md); events/: an event per function for local invocation.
//
// This package holds no code: its tests check template.yaml against the
// official SAM schema and the deployment's promises (routes, authorizers,
// queue wiring, least privilege, builds), and that the files in events/
// decode into the aws-lambda-go event types. They read the template with
// dev/cfn; samFunctions in template_test.go is the one list of functions.
package keybuzzamazon
