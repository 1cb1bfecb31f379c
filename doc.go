// Package keybuzzamazon is the root of keybuzz-amazon, the AWS Lambda
// connector that links KeyBuzz tenants to their Amazon Seller Central
// accounts and turns what buyers do there into KeyBuzz tickets.
//
// The repository is a SAM application built from this one module:
//
//   - functions/oauthstart, oauthcallback, oauthlogin, status and
//     disconnect: the Connect routes under /api/v1/marketplaces/amazon
//     (payload 2.0), one httpapi.Route each;
//   - functions/pollfanout and polltenant: the EventBridge schedule that
//     enqueues one poll job per due connection (and sweeps stranded
//     replies), and the SQS consumer that polls Amazon (the fallback
//     channel);
//   - functions/ordernotify: the SQS consumer of Amazon's ORDER_CHANGE
//     notifications (the push channel);
//   - functions/inboundmail: the SQS consumer of the mails SES receives for
//     the tenants' inbound addresses (Amazon's buyer-message relay);
//   - functions/sendreply and outbound: the reply routes under
//     …/amazon/tickets/{ticketId} (an agent's reply checked, stored and
//     queued; a ticket's replies and their fate);
//   - functions/replysender: the SQS consumer of the reply queue, each
//     reply to SESv2 at most once;
//   - functions/sesevents: the SQS consumer of SES's sending events, each
//     reply settled SENT or FAILED;
//   - shared/: the domain (marketplace, reply), the flows (connect, poll,
//     push, inboundmail, replies, replysender; none imports another), the
//     seller gateway (sellerapi), the queue transport (sqsbatch), one
//     builder per function (wire) and one package per dependency it adapts
//     (PostgreSQL, Vault, Amazon's LWA and SP-API, SQS, S3, SES,
//     configuration);
//   - template.yaml, samconfig.toml and sam.mk: the deployment
//     (docs/deploy.md); events/: an event per function for local invocation.
//
// This package holds no code: house_test.go holds the house (nothing
// deployed imports dev/, each function links only what it uses, no flow
// imports another, cmd/local builds what the functions build); the other
// tests check template.yaml against the
// official SAM schema and the deployment's promises (routes, authorizers,
// queue wiring, least privilege, builds), and that the files in events/
// decode into the aws-lambda-go event types. They read the template with
// dev/cfn; samFunctions in template_test.go is the one list of functions.
package keybuzzamazon
