"""A local stand-in for the slice of WeChat Pay API v3 that Lianka calls through the ``wechatpayv3``
SDK, and for WeChat Pay's signed, encrypted notifications — so tests and local runs never leave the
machine (decision 0033).

* Every request must carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
  signature=…,timestamp=…,serial_no=…`` signed with the merchant's private key (checked against the
  public key registered with :meth:`WeChatPayStandin.add_merchant`); every answer is signed with the
  platform key (``Wechatpay-Signature`` etc.), as the SDK verifies.
* ``GET /v3/certificates`` — the platform certificate, AES-GCM-encrypted with the merchant's APIv3 key
* ``POST /v3/pay/transactions/jsapi|h5`` — ``prepay_id`` / ``h5_url``
* ``GET /v3/pay/transactions/out-trade-no/{no}?mchid=`` — the transaction
* ``POST /v3/refund/domestic/refunds`` — a refund (idempotent by ``out_refund_no``)
* ``GET /h5/{out_trade_no}`` — the page a member pays on (a *Pay* button), then back to ``redirect_url``

The platform certificate and key are generated at start (``cryptography``); :func:`merchant_keys`
makes a merchant's key pair and serial. :meth:`pay` simulates the member paying and returns the
signed notification; :meth:`notify` POSTs it (tests may hold it, repeat it, forge it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import json
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from litestar import Litestar, Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Redirect

Obj = dict[str, Any]
_AUTH = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class MerchantKeys:
    mchid: str
    appid: str
    serial_no: str
    private_key: str  # PEM, what the merchant enters in the console
    apiv3_key: str


def merchant_keys(mchid: str | None = None, appid: str = "wx0000000000000000") -> tuple[MerchantKeys, str]:
    """A new test merchant: (its credentials, its public key PEM for the stand-in)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    creds = MerchantKeys(
        mchid or str(1_600_000_000 + secrets.randbelow(99_999_999)),
        appid,
        secrets.token_hex(20).upper(),
        pem,
        secrets.token_urlsafe(24)[:32],
    )
    return creds, public.decode()


def _sign(key: rsa.RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> Obj:
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat's nonces
    data = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "nonce": nonce,
        "associated_data": associated_data,
        "ciphertext": base64.b64encode(data).decode(),
    }


class WeChatError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Notification:
    url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class WeChatPayStandin:
    merchants: dict[str, tuple[MerchantKeys, Any]] = field(default_factory=dict)
    transactions: dict[tuple[str, str], Obj] = field(default_factory=dict)
    refunds: dict[tuple[str, str], Obj] = field(default_factory=dict)
    public_base: str = "http://127.0.0.1"
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    sent: list[tuple[Notification, int]] = field(default_factory=list)
    auto_notify: bool = True
    #: what a new refund answers: "SUCCESS", or "PROCESSING" (the bank takes its time; it is finished
    #: later by :meth:`settle_refund`, which makes the refund notification)
    refund_status: str = "SUCCESS"

    def __post_init__(self) -> None:
        self.platform_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lianka WeChat Pay stand-in platform")])
        now = datetime.now(UTC)
        self.platform_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.platform_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .sign(self.platform_key, hashes.SHA256())
        )
        self.platform_serial = format(self.platform_cert.serial_number, "X")

    def add_merchant(self, creds: MerchantKeys, public_key_pem: str) -> None:
        self.merchants[creds.mchid] = (creds, serialization.load_pem_public_key(public_key_pem.encode()))

    def new_merchant(self, appid: str = "wx0000000000000000") -> MerchantKeys:
        creds, public = merchant_keys(appid=appid)
        self.add_merchant(creds, public)
        return creds

    # --- signatures ---------------------------------------------------------------------------------

    def authenticate(self, method: str, path: str, header: str, body: str) -> str:
        """The merchant (mchid) whose key signed this request, or a 401."""
        if not header.startswith("WECHATPAY2-SHA256-RSA2048 "):
            raise WeChatError(401, "SIGN_ERROR", "Authorization scheme must be WECHATPAY2-SHA256-RSA2048")
        parts = dict(_AUTH.findall(header))
        known = self.merchants.get(parts.get("mchid", ""))
        if known is None or parts.get("serial_no") != known[0].serial_no:
            raise WeChatError(401, "SIGN_ERROR", "unknown merchant or certificate serial")
        if abs(time.time() - int(parts.get("timestamp") or 0)) > 300:
            raise WeChatError(401, "SIGN_ERROR", "timestamp out of range")
        message = f"{method}\n{path}\n{parts['timestamp']}\n{parts.get('nonce_str', '')}\n{body}\n"
        try:
            known[1].verify(
                base64.b64decode(parts.get("signature", "")), message.encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            raise WeChatError(401, "SIGN_ERROR", "signature verification failed") from None
        return str(parts["mchid"])

    def signed_headers(self, body: str, *, key: Any = None, serial: str | None = None) -> dict[str, str]:
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": serial or self.platform_serial,
            "Wechatpay-Signature": _sign(key or self.platform_key, f"{ts}\n{nonce}\n{body}\n"),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    # --- the API ------------------------------------------------------------------------------------

    def certificates(self, mchid: str) -> Obj:
        creds = self.merchants[mchid][0]
        pem = self.platform_cert.public_bytes(serialization.Encoding.PEM).decode()
        cert = self.platform_cert
        return {
            "data": [
                {
                    "serial_no": self.platform_serial,
                    "effective_time": cert.not_valid_before_utc.isoformat(),
                    "expire_time": cert.not_valid_after_utc.isoformat(),
                    "encrypt_certificate": encrypt(creds.apiv3_key, pem, "certificate"),
                }
            ]
        }

    def create(self, mchid: str, kind: str, body: Obj) -> Obj:
        for name in ("appid", "description", "out_trade_no", "notify_url", "amount"):
            if not body.get(name):
                raise WeChatError(400, "PARAM_ERROR", f"{name} is required")
        if body.get("mchid") != mchid:
            raise WeChatError(400, "PARAM_ERROR", "mchid does not match the signer")
        if body["appid"] != self.merchants[mchid][0].appid:
            raise WeChatError(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match")
        if kind == "jsapi" and not (body.get("payer") or {}).get("openid"):
            raise WeChatError(400, "PARAM_ERROR", "payer.openid is required for JSAPI")
        total = (body["amount"] or {}).get("total")
        if not isinstance(total, int) or total <= 0:
            raise WeChatError(400, "PARAM_ERROR", "amount.total must be a positive integer (fen)")
        key = (mchid, str(body["out_trade_no"]))
        existing = self.transactions.get(key)
        if existing is not None and existing["_request"] != body:
            raise WeChatError(400, "OUT_TRADE_NO_USED", "out_trade_no already used with other parameters")
        if existing is None:
            self.transactions[key] = {
                "appid": body["appid"],
                "mchid": mchid,
                "out_trade_no": body["out_trade_no"],
                "transaction_id": None,
                "trade_type": kind.upper(),
                "trade_state": "NOTPAY",
                "trade_state_desc": "未支付",
                "attach": body.get("attach", ""),
                "amount": {"total": total, "currency": body["amount"].get("currency", "CNY")},
                "_request": body,
                "_prepay_id": f"wx{secrets.token_hex(14)}",
            }
        tx = self.transactions[key]
        if kind == "jsapi":
            return {"prepay_id": tx["_prepay_id"]}
        return {"h5_url": f"{self.public_base}/h5/{mchid}/{quote(str(body['out_trade_no']))}"}

    def query(self, mchid: str, out_trade_no: str) -> Obj:
        tx = self.transactions.get((mchid, out_trade_no))
        if tx is None:
            raise WeChatError(404, "ORDER_NOT_EXIST", "order does not exist")
        return _public(tx)

    def refund(self, mchid: str, body: Obj) -> Obj:
        no = str(body.get("out_refund_no") or "")
        if not no:
            raise WeChatError(400, "PARAM_ERROR", "out_refund_no is required")
        if (mchid, no) in self.refunds:
            return _public(self.refunds[(mchid, no)])
        tx = next(
            (
                t
                for (m, _), t in self.transactions.items()
                if m == mchid
                and (t["transaction_id"] == body.get("transaction_id") or t["out_trade_no"] == body.get("out_trade_no"))
                and t["transaction_id"]
            ),
            None,
        )
        if tx is None:
            raise WeChatError(404, "RESOURCE_NOT_EXISTS", "no paid transaction to refund")
        amount = body.get("amount") or {}
        done = sum(
            r["amount"]["refund"]
            for (m, _), r in self.refunds.items()
            if m == mchid and r["transaction_id"] == tx["transaction_id"]
        )
        want = amount.get("refund")
        if (
            not isinstance(want, int)
            or want <= 0
            or done + want > tx["amount"]["total"]
            or amount.get("total") != tx["amount"]["total"]
        ):
            raise WeChatError(400, "INVALID_REQUEST", "refund amount is invalid or exceeds what is left")
        refund = {
            "refund_id": f"50{secrets.randbelow(10**28):028d}",
            "out_refund_no": no,
            "transaction_id": tx["transaction_id"],
            "out_trade_no": tx["out_trade_no"],
            "status": self.refund_status,
            "create_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "amount": {"refund": want, "total": tx["amount"]["total"], "currency": tx["amount"]["currency"]},
            "_notify_url": body.get("notify_url") or tx["_request"]["notify_url"],
        }
        self.refunds[(mchid, no)] = refund
        tx.update(trade_state="REFUND", trade_state_desc="转入退款")
        return _public(refund)

    def query_refund(self, mchid: str, out_refund_no: str) -> Obj:
        refund = self.refunds.get((mchid, out_refund_no))
        if refund is None:
            raise WeChatError(404, "RESOURCE_NOT_EXISTS", "refund does not exist")
        return _public(refund)

    def settle_refund(self, mchid: str, out_refund_no: str, status: str = "SUCCESS") -> Notification:
        """A PROCESSING refund ends (SUCCESS, ABNORMAL or CLOSED): the signed, encrypted refund
        notification WeChat Pay sends (``REFUND.<status>``)."""
        refund = self.refunds[(mchid, out_refund_no)]
        refund["status"] = status
        if status == "SUCCESS":
            refund["success_time"] = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
        resource = {
            "mchid": mchid,
            "out_trade_no": refund["out_trade_no"],
            "transaction_id": refund["transaction_id"],
            "out_refund_no": out_refund_no,
            "refund_id": refund["refund_id"],
            "refund_status": status,
            "success_time": refund.get("success_time"),
            "amount": {
                "total": refund["amount"]["total"],
                "refund": refund["amount"]["refund"],
                "payer_total": refund["amount"]["total"],
                "payer_refund": refund["amount"]["refund"],
            },
        }
        return self._notification(mchid, resource, "refund", f"REFUND.{status}", "退款状态变更", refund["_notify_url"])

    # --- the member pays ------------------------------------------------------------------------------

    def pay(self, mchid: str, out_trade_no: str) -> Notification:
        """The member paid: the transaction succeeds; the signed, encrypted notification to send."""
        tx = self.transactions[(mchid, out_trade_no)]
        if tx["trade_state"] == "NOTPAY":
            tx.update(
                trade_state="SUCCESS",
                trade_state_desc="支付成功",
                transaction_id=f"42{secrets.randbelow(10**26):026d}",
                success_time=datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
                payer={"openid": (tx["_request"].get("payer") or {}).get("openid", "o_standin")},
                bank_type="OTHERS",
            )
            tx["amount"]["payer_total"] = tx["amount"]["total"]
        return self.notification(mchid, tx)

    def notification(self, mchid: str, tx: Obj, *, key: Any = None) -> Notification:
        return self._notification(
            mchid, _public(tx), "transaction", "TRANSACTION.SUCCESS", "支付成功", tx["_request"]["notify_url"], key=key
        )

    def _notification(
        self, mchid: str, obj: Obj, original_type: str, event_type: str, summary: str, url: str, *, key: Any = None
    ) -> Notification:
        creds = self.merchants[mchid][0]
        resource = encrypt(creds.apiv3_key, json.dumps(obj, ensure_ascii=False), original_type)
        body = json.dumps(
            {
                "id": str(uuid.uuid4()),
                "create_time": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": summary,
                "resource": {**resource, "original_type": original_type},
            },
            ensure_ascii=False,
        )
        return Notification(url, body.encode(), self.signed_headers(body, key=key))

    async def notify(self, n: Notification) -> int:
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(n.url, content=n.body, headers={"Content-Type": "application/json", **n.headers})
        self.sent.append((n, r.status_code))
        return r.status_code

    # --- HTTP -----------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def serve(self, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(build_app(self), host=host, port=port, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        self.public_base = f"http://{host}:{server.servers[0].sockets[0].getsockname()[1]}"
        try:
            yield self.public_base
        finally:
            server.should_exit = True
            await task


def _public(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if not k.startswith("_") and v is not None}


def build_app(standin: WeChatPayStandin) -> Litestar:
    async def call(request: Request[Any, Any, Any], work: Any) -> Response[str]:
        raw = (await request.body()).decode()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        try:
            mchid = standin.authenticate(request.method, path, request.headers.get("authorization", ""), raw)
            result = work(mchid, json.loads(raw) if raw else {})
            status, text = 200, json.dumps(result, ensure_ascii=False)
        except WeChatError as exc:
            status, text = exc.status, json.dumps({"code": exc.code, "message": exc.message}, ensure_ascii=False)
        standin.requests.append((request.method, request.url.path, status))
        headers = standin.signed_headers(text) if status < 300 else {}
        return Response(text, status_code=status, media_type="application/json", headers=headers)

    @get("/v3/certificates")
    async def certificates(request: Request[Any, Any, Any]) -> Response[str]:
        return await call(request, lambda m, _: standin.certificates(m))

    @post("/v3/pay/transactions/{kind:str}")
    async def create(request: Request[Any, Any, Any], kind: FromPath[str]) -> Response[str]:
        if kind not in ("jsapi", "h5"):
            return Response('{"code":"NOT_FOUND"}', status_code=404, media_type="application/json")
        return await call(request, lambda m, body: standin.create(m, kind, body))

    @get("/v3/pay/transactions/out-trade-no/{no:str}")
    async def query(request: Request[Any, Any, Any], no: FromPath[str]) -> Response[str]:
        return await call(request, lambda m, _: standin.query(m, no))

    @post("/v3/refund/domestic/refunds")
    async def refund(request: Request[Any, Any, Any]) -> Response[str]:
        return await call(request, standin.refund)

    @get("/v3/refund/domestic/refunds/{no:str}")
    async def refund_query(request: Request[Any, Any, Any], no: FromPath[str]) -> Response[str]:
        return await call(request, lambda m, _: standin.query_refund(m, no))

    @get("/h5/{mchid:str}/{no:str}", media_type="text/html")
    async def h5_page(request: Request[Any, Any, Any], mchid: FromPath[str], no: FromPath[str]) -> Response[str]:
        tx = standin.transactions.get((mchid, no))
        if tx is None:
            return Response("No such order", status_code=404, media_type="text/plain")
        back = request.query_params.get("redirect_url", "")
        amount = f"¥{tx['amount']['total'] / 100:.2f}"  # display only
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>微信支付 stand-in</title></head><body>"
            f"<h1>{html.escape(tx['_request']['description'])}</h1><p>{amount} (local WeChat Pay stand-in: no money moves)</p>"
            f"<form method='post' action='/h5/{html.escape(mchid)}/{html.escape(no)}/pay'>"
            f"<input type='hidden' name='redirect_url' value='{html.escape(back)}'><button>支付 Pay</button></form>"
            "</body></html>"
        )
        return Response(page, media_type="text/html")

    @post("/h5/{mchid:str}/{no:str}/pay")
    async def h5_pay(request: Request[Any, Any, Any], mchid: FromPath[str], no: FromPath[str]) -> Response[Any]:
        form = await request.form()
        if (mchid, no) not in standin.transactions:
            return Response("No such order", status_code=404, media_type="text/plain")
        n = standin.pay(mchid, no)
        if standin.auto_notify:
            await standin.notify(n)
        back = str(form.get("redirect_url") or "")
        if back:
            return Redirect(back, status_code=303)
        return Response("paid", media_type="text/plain")

    return Litestar(
        route_handlers=[certificates, create, query, refund, refund_query, h5_page, h5_pay],
        debug=False,
        openapi_config=None,
    )


#: the stand-in's port under ``lianka run`` (``LIANKA_WECHATPAY_STANDIN_PORT``)
DEV_PORT = 8126


def dev_merchant(data_dir: Path) -> MerchantKeys:
    """The test merchant ``lianka run``'s stand-in knows, kept in the data directory so its keys
    survive restarts (``lianka payments use-wechat-standin`` gives them to a merchant)."""
    path = data_dir / "wechatpay-standin-merchant.json"
    if path.exists():
        return MerchantKeys(**json.loads(path.read_text()))
    creds, _ = merchant_keys(mchid="1900000109", appid="wxd678efh567hg6787")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps(creds.__dict__))
    path.chmod(0o600)
    return creds


def serve_dev(data_dir: Path, port: int = DEV_PORT) -> None:
    """Run the stand-in for ``lianka run`` (blocking) with the data directory's test merchant."""
    import uvicorn

    standin = WeChatPayStandin(public_base=f"http://127.0.0.1:{port}")
    creds = dev_merchant(data_dir)
    key = serialization.load_pem_private_key(creds.private_key.encode(), password=None)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    standin.add_merchant(creds, public.decode())
    uvicorn.run(build_app(standin), host="127.0.0.1", port=port, log_level="warning")
