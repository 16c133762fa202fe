"""Stand-ins for what an etcd member talks to when it uploads a snapshot, run inside a test's network namespace:
the instance metadata service (IMDSv2: a token first, then the region and the role's temporary credentials) at
169.254.169.254, and S3's PUT Object over HTTPS, which accepts a request only when its AWS Signature Version 4 is
right for those credentials, its payload matches the signed digest and it carries the session token.

Usage: python s3_standin.py STATE_DIR CERT KEY. Accepted uploads land in STATE_DIR/objects/<path>; every decision is
appended to STATE_DIR/requests.log."""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REGION = "eu-west-1"
ROLE = "k8s-lab-etcd-role"
IMDS_TOKEN = "imds-token-for-the-lab"
CREDENTIALS = {"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIALABLABLABLABLAB1",
               "SecretAccessKey": "lab/secret/key/for/signatures/only/0123", "Token": "lab-session-token",
               "Expiration": "2099-01-01T00:00:00Z"}

state = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")


def log(line: str) -> None:
    with open(state / "requests.log", "a") as f:
        f.write(line + "\n")


class Imds(BaseHTTPRequestHandler):
    def do_PUT(self):
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self._answer(200, IMDS_TOKEN)
        self._answer(400, "")

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
            log(f"imds 401 {self.path}")
            return self._answer(401, "")
        answers = {"/latest/meta-data/placement/region": REGION,
                   "/latest/meta-data/iam/security-credentials/": ROLE,
                   f"/latest/meta-data/iam/security-credentials/{ROLE}": json.dumps(CREDENTIALS)}
        if self.path in answers:
            return self._answer(200, answers[self.path])
        self._answer(404, "")

    def _answer(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def expected_signature(method: str, path: str, headers, signed: list[str], payload_hash: str, amz_date: str) -> str:
    """SigV4 as S3 computes it (https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html)."""
    canonical_headers = "".join(f"{h}:{' '.join(headers[h].split())}\n" for h in signed)
    canonical = "\n".join(["PUT" if method == "PUT" else method, path, "", canonical_headers, ";".join(signed),
                           payload_hash])
    scope = f"{amz_date[:8]}/{REGION}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{CREDENTIALS['SecretAccessKey']}".encode(), amz_date[:8]), REGION), "s3"),
                "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class S3(BaseHTTPRequestHandler):
    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reason = self._refusal(body)
        if reason:
            log(f"s3 403 {self.path}: {reason}")
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        target = state / "objects" / self.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        log(f"s3 200 {self.headers['Host']}{self.path}")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _refusal(self, body: bytes) -> str | None:
        auth = self.headers.get("Authorization", "")
        fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
        if not auth.startswith("AWS4-HMAC-SHA256 ") or not fields.get("Credential", "").startswith(
                f"{CREDENTIALS['AccessKeyId']}/"):
            return f"not signed with the role's key: {auth!r}"
        signed = fields["SignedHeaders"].split(";")
        for needed in ("host", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"):
            if needed not in signed:
                return f"{needed} is not signed"
        if self.headers["x-amz-security-token"] != CREDENTIALS["Token"]:
            return "wrong session token"
        if self.headers["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
            return "payload does not match x-amz-content-sha256"
        headers = {k.lower(): v for k, v in self.headers.items()}
        wanted = expected_signature("PUT", self.path, headers, signed, headers["x-amz-content-sha256"],
                                    headers["x-amz-date"])
        if fields.get("Signature") != wanted:
            return "signature does not match"
        return None

    def log_message(self, *args):
        pass


def main() -> None:
    cert, key = sys.argv[2], sys.argv[3]
    imds = ThreadingHTTPServer(("169.254.169.254", 80), Imds)
    s3 = ThreadingHTTPServer(("127.0.0.1", 443), S3)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    s3.socket = context.wrap_socket(s3.socket, server_side=True)
    threading.Thread(target=imds.serve_forever, daemon=True).start()
    (state / "ready").write_text("ready")
    s3.serve_forever()


if __name__ == "__main__":
    main()
