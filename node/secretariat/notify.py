"""Reminders and notices: a signed notification to the member's node, and e-mail to its focal
points over SMTP.

Why both channels: the node's operator sees a notification in ``enlace status`` (signed by the
Secretariat's key, so it cannot be forged by anyone else on the network, and audited on both
sides); the focal points, who are not always at the node, get the same text by e-mail, as the
Secretariat promised in 2016 ("recordatorios automáticos").

Invariants:
* :func:`notify_handler` (member side) stores only what a node with the ``secretariat`` role
  sent — the authoriser checked the role before it runs — with the sender's key id and the
  request nonce, which locate the signed request in the audit log.
* Every reminder attempt, by either channel, is recorded at the ST (``st_reminders``) with its
  outcome; a failed channel never stops the other one.
* SMTP talks only to the configured relay; nothing is sent when no host is configured.
"""

from __future__ import annotations

import logging
import re
import secrets
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from crypto.envelope import format_time
from enlace.v1 import secretariat_pb2
from node.client import PeerClient
from node.errors import ConfigError, EnlaceError, InvalidArgumentError, UnavailableError
from node.peer_checks import refuse, shown
from node.runtime import NodeRuntime
from node.secretariat.freshness import MemberFreshness
from node.secretariat.settings import SecretariatSettings, smtp_password
from node.server.pipeline import CallContext, MethodSpec

log = logging.getLogger("node.secretariat")

SERVICE = "enlace.v1.NotificationService"
NOTIFY = f"/{SERVICE}/Notify"
KINDS = ("reminder", "publication", "notice")
NOTIFICATION_ID = re.compile(r"N[0-9a-f]{16}")


def _check(request: secretariat_pb2.NotifyRequest) -> None:
    if request.kind not in KINDS:
        raise InvalidArgumentError(
            f"unknown kind {request.kind!r}", field="kind", hint="/".join(KINDS)
        )
    if not request.subject.strip() or len(request.subject) > 200 or "\n" in request.subject:
        raise InvalidArgumentError("one line of 1 to 200 characters", field="subject")
    if len(request.body) > 4000:
        raise InvalidArgumentError("at most 4000 characters", field="body")
    if request.language not in ("es", "en"):
        raise InvalidArgumentError("es or en", field="language")
    if len(request.period) > 40 or len(request.reference) > 100:
        raise InvalidArgumentError("too long", field="period/reference")


def notify_handler(
    ctx: CallContext, request: secretariat_pb2.NotifyRequest
) -> secretariat_pb2.NotifyResponse:
    """Member side: keep the Secretariat's notification for the operator."""
    _check(request)
    notification_id = f"N{secrets.token_hex(8)}"
    ctx.runtime.store.secretariat.add_notification(
        {
            "notification_id": notification_id,
            "sender": ctx.peer.country,
            "kind": request.kind,
            "period": request.period,
            "subject": request.subject,
            "body": request.body,
            "language": request.language,
            "reference": request.reference,
            "received_at": ctx.now,
            "signed_by": ctx.header.key_id,
            "nonce": ctx.header.nonce,
            "acknowledged_at": None,
        }
    )
    ctx.audit_extra.update(kind=request.kind, period=request.period, notification=notification_id)
    return secretariat_pb2.NotifyResponse(
        notification_id=notification_id, received_at=format_time(ctx.now)
    )


def method_specs() -> list[MethodSpec]:
    return [MethodSpec(NOTIFY, "notifications", secretariat_pb2.NotifyRequest, notify_handler)]


def send_notification(
    runtime: NodeRuntime,
    member: str,
    *,
    kind: str,
    subject: str,
    body: str,
    period: str = "",
    language: str = "es",
    reference: str = "",
    timeout: float = 10.0,
) -> str:
    """ST side: a signed notification to ``member``'s node; returns the member's id for it."""
    request = secretariat_pb2.NotifyRequest(
        kind=kind,
        period=period,
        subject=subject,
        body=body,
        language=language,
        reference=reference,
    )
    _check(request)
    with PeerClient(runtime, member, timeout=timeout) as client:
        reply = client.call(NOTIFY, request, secretariat_pb2.NotifyResponse)
    # Recorded on the reminder and printed: only the form members issue (see notify()).
    if not NOTIFICATION_ID.fullmatch(reply.message.notification_id):
        refuse(
            member,
            "notification receipt",
            [f"the id {shown(reply.message.notification_id)} is not N and 16 hex digits"],
        )
    return reply.message.notification_id


def send_email(
    settings: SecretariatSettings,
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    body: str,
) -> str:
    """Send one plain-text message through the configured relay; returns its Message-ID."""
    if not settings.smtp_host:
        raise ConfigError(
            "no SMTP relay configured",
            hint="set smtp_host in secretariat.toml (ENLACE_ST_SMTP_HOST)",
        )
    if not to:
        raise InvalidArgumentError(
            "no recipient", field="to", hint="add focal points to the directory"
        )
    message = EmailMessage()
    message["From"] = settings.smtp_from or sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="enlace.invalid")
    message.set_content(body)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_username:
                smtp.login(settings.smtp_username, smtp_password(settings))
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise UnavailableError(
            f"SMTP relay {settings.smtp_host}:{settings.smtp_port} failed: {exc}",
            hint="check the relay and the focal points' addresses",
        ) from exc
    return str(message["Message-ID"])


def reminder_text(state: MemberFreshness, language: str, secretariat: str) -> tuple[str, str]:
    """Subject and body of a reminder about ``state.period``."""
    deadline = state.deadline.date().isoformat()
    as_of = state.as_of.date().isoformat() if state.as_of else "—"
    if language == "en":
        subject = f"Reminder: CRM matrices for {state.period} ({state.country})"
        body = (
            f"The Technical Secretariat has not yet received current data from {state.country} "
            f"for {state.period}. The delivery deadline was {deadline}; your node reports data "
            f"as of {as_of}.\n\nPlease import the records of the period into your node; the "
            "Secretariat will pull the matrices again automatically, or you can send an "
            "emergency update (`enlace st emergency`).\n\n"
            f"— {secretariat}"
        )
    else:
        subject = f"Recordatorio: cuadros CRM de {state.period} ({state.country})"
        body = (
            f"La Secretaría Técnica aún no ha recibido datos al día de {state.country} para "
            f"{state.period}. El plazo de entrega venció el {deadline}; su nodo informa datos "
            f"al {as_of}.\n\nPor favor importe los registros del período en su nodo; la "
            "Secretaría volverá a consultar los cuadros automáticamente, o puede enviar una "
            "actualización de emergencia (`enlace st emergency`).\n\n"
            f"— {secretariat}"
        )
    return subject, body


def remind(
    runtime: NodeRuntime,
    settings: SecretariatSettings,
    states: Iterable[MemberFreshness],
    *,
    channels: Sequence[str] = ("node", "email"),
    kind: str = "reminder",
) -> list[dict[str, str]]:
    """Send a reminder to each member in ``states`` by every channel; record each attempt."""
    store = runtime.store.secretariat
    directory = runtime.directory.current(runtime.clock.now())
    sent: list[dict[str, str]] = []
    for state in states:
        subject, body = reminder_text(state, settings.language, runtime.config.name)
        reference = f"R{secrets.token_hex(6)}"
        for channel in channels:
            status, detail = "sent", ""
            try:
                if channel == "node":
                    detail = send_notification(
                        runtime,
                        state.country,
                        kind=kind,
                        subject=subject,
                        body=body,
                        period=state.period,
                        language=settings.language,
                        reference=reference,
                    )
                elif channel == "email":
                    focal = [f.email for f in directory.member(state.country).focal_points]
                    detail = send_email(
                        settings,
                        sender=f"secretariat@{runtime.config.country.lower()}.invalid",
                        to=focal,
                        subject=subject,
                        body=body,
                    )
                else:
                    raise InvalidArgumentError(f"unknown channel {channel!r}", field="channel")
            except EnlaceError as exc:
                status, detail = "failed", str(exc)
                log.warning("reminder to %s by %s failed: %s", state.country, channel, exc)
            row = {
                "reminder_id": f"{reference}-{channel}",
                "member": state.country,
                "period": state.period,
                "kind": kind,
                "channel": channel,
                "sent_at": runtime.clock.now(),
                "status": status,
                "detail": detail[:2000],
            }
            store.add_reminder(row)
            sent.append({k: str(v) for k, v in row.items()})
    return sent
