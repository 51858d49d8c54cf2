"""``payplane webhooks listen``: a merchant's webhook endpoint for trying the platform locally.

Verifies every delivery with the official ``standardwebhooks`` library (as a merchant should),
prints the event, answers 204; anything unverifiable gets 400 and is reported, not printed.
"""

import argparse
import json
import sys
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from payplane_cli import merchants
from payplane_cli.stack import Stack

MAX_BODY = 1024 * 1024


def handler_for(secret: str, seen: set[str]) -> type[BaseHTTPRequestHandler]:
    webhook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            try:
                event = webhook.verify(body, dict(self.headers))
            except WebhookVerificationError as exc:
                print(f"refused an unverifiable delivery: {exc}", file=sys.stderr, flush=True)
                self.send_response(400)
                self.end_headers()
                return
            webhook_id = self.headers["webhook-id"]
            duplicate = webhook_id in seen  # redeliveries keep their id: drop them
            seen.add(webhook_id)
            line = {"webhook_id": webhook_id, "duplicate": duplicate} | event
            print(json.dumps(line), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return Handler


def register(sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Stack]):
    webhooks = sub.add_parser("webhooks", help="a local webhook endpoint for a merchant")
    actions = webhooks.add_subparsers(dest="action", required=True)
    listen = actions.add_parser("listen", help="receive, verify and print webhooks")
    listen.add_argument("--merchant", default="example", help="whose webhook secret verifies")
    listen.add_argument("--port", type=int, default=8090)

    def cmd_listen(args: argparse.Namespace) -> int:
        secret = merchants.credentials(stack_of(args), args.merchant)["webhook_secret"]
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(secret, set()))
        print(f"listening on http://127.0.0.1:{args.port}/ for {args.merchant}", file=sys.stderr)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        return 0

    listen.set_defaults(func=cmd_listen)
