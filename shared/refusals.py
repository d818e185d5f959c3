"""Every refusal a service answers with, in one catalogue: a stable code, the HTTP status that
says it, and the reason in Chinese and English. One exception (`Refused`) carries a refusal out
of a use case or a dependency; one handler (`on_refused`, installed by
`shared.http_problems.install_problems`) answers it in the project's Problem shape.

Validation errors of a body's fields keep their own codes (`shared.problems` for pydantic's,
the catalogue's rules for values); this catalogue holds the refusals of access and of state,
which used to have a different code in each service.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.errors import FieldError

if TYPE_CHECKING:  # the catalogue itself is plain data: domain code may raise its refusals
    from fastapi import Request
    from fastapi.responses import JSONResponse


@dataclass(frozen=True, slots=True)
class Kind:
    status: int
    message_zh: str  # str.format templates: the parameters are named where the code is raised
    message_en: str


CATALOGUE: dict[str, Kind] = {
    # Who are you?
    "unauthenticated": Kind(401, "缺少凭证:请在 Authorization 头中提供 Bearer 令牌",
                            "missing credentials: send Authorization: Bearer <token>"),
    "bad_token": Kind(401, "令牌无效或已吊销", "the token is unknown or revoked"),
    "auth_unavailable": Kind(503, "暂时无法核验凭证,请稍后重试",
                             "credentials cannot be checked right now; retry later"),
    "bad_receipt_secret": Kind(401, "回执密钥缺失或不正确",
                               "the receipt secret is missing or wrong"),
    "signed_out": Kind(401, "请先登录(粘贴您的访问令牌)",
                       "sign in first (paste your access token)"),
    # Not yours.
    "not_operator": Kind(403, "仅指挥部值班操作员可以这样做",
                         "only command-centre operators may do this"),
    "outside_area": Kind(403, "{what} 不在此凭证的辖区内",
                         "{what} is outside this credential's area"),
    "names_below_town": Kind(403, "仅村(居)和乡镇的操作员可登记管控对象、查看其姓名和联系方式",
                             "only village and town operators register people under control "
                             "and see their names and contacts"),
    # Not a place.
    "bad_node": Kind(422, "区划代码无效: {node}", "not a division code: {node}"),
    # Nothing there.
    "unknown_node": Kind(404, "没有节点 {node}", "no node {node}"),
    "unknown_alert": Kind(404, "预警 {alert_id} 不存在", "no alert {alert_id}"),
    "unknown_person": Kind(404, "管控对象 {person_id} 不存在",
                           "no person under control {person_id}"),
    "unknown_import": Kind(404, "数据导入 {import_id} 不存在", "no import {import_id}"),
    "unknown_edition": Kind(404, "定时报表 {edition_id} 不存在", "no edition {edition_id}"),
    "unknown_message": Kind(404, "没有消息编号为 {message_id} 的发送记录(回执已留存)",
                            "no message sent with id {message_id} (the receipt is kept)"),
    "receipts_off": Kind(404, "未配置短信回执(ROLLCALL_NOTIFY_SMS_RECEIPT_SECRET)",
                         "SMS receipts are not configured (ROLLCALL_NOTIFY_SMS_RECEIPT_SECRET)"),
    "no_report": Kind(404, "该单位 {day} 尚无报告,无法更正",
                      "this unit has no report for {day} to correct"),
    # In conflict with what is stored.
    "already_reported": Kind(409, "该单位 {day} 已报告(第 {revision} 版),请提交更正",
                             "this unit already reported for {day} (revision {revision}); "
                             "send a correction"),
    "id_reused": Kind(409, "此编号已用于另一份内容不同的报送",
                      "this id was already used for a different submission"),
    "revision_conflict": Kind(409, "第 {revision} 版不是下一版:最新为第 {latest} 版,下一版应为 "
                                   "{next};若该版已存在,其内容与此不同",
                              "revision {revision} is not the next one: the latest revision is "
                              "{latest} and the next is {next}; if it exists, its content "
                              "differs"),
    # Review and sign-off (逐级审核上报).
    "not_confirming": Kind(422, "{node} 所在层级不需确认上报",
                           "the level of {node} does not confirm"),
    "not_own_node": Kind(403, "只有 {node} 本级的值班操作员可以确认上报",
                         "only an operator of {node} itself may confirm its day"),
    "sendbacks_open": Kind(409, "辖区内还有 {count} 份退回的报告未更正,不能确认上报",
                           "{count} reports below are sent back and not corrected yet: the day "
                           "cannot be confirmed"),
    "children_unconfirmed": Kind(409, "还有 {count} 个下级未确认上报(逐级上报),本级暂不能确认",
                                 "{count} children have not confirmed their day yet: this level "
                                 "confirms after them"),
    "nothing_to_review": Kind(404, "该单位 {day} 尚无报告,无法退回",
                              "this unit has no report for {day} to send back"),
    "already_sent_back": Kind(409, "该报告(第 {revision} 版)已退回,等待单位更正",
                              "this report (revision {revision}) is already sent back and "
                              "waits for the unit's correction"),
    "unknown_unit": Kind(404, "没有报告单位 {unit}", "no reporting unit {unit}"),
    # Another service does not answer (the console asks the others).
    "unavailable": Kind(502, "{service} 服务暂不可用,请稍后重试",
                        "the {service} service does not answer; try again shortly"),
    # Not now: the lifecycle does not allow it from the current state.
    "wrong_state": Kind(409, "当前状态为 {status},不能{action}",
                        "it is {status}: it cannot be {action}"),
    # Not a page of this list.
    "bad_cursor": Kind(422, "分页游标无效,请从第一页重新读取",
                       "not a cursor of this list: start again from the first page"),
}

# The `detail` line of a Problem, by status.
DETAILS = {400: "bad request", 401: "unauthenticated", 403: "forbidden", 404: "not found",
           409: "conflict", 413: "too large", 422: "refused", 429: "too many requests",
           502: "unavailable", 503: "unavailable"}


class Refused(Exception):
    """A request or submission refused: its status and every field at fault."""

    def __init__(self, status: int, errors: list[FieldError],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(e.message_en for e in errors))
        self.status, self.errors, self.headers = status, errors, headers

    @property
    def error(self) -> FieldError:
        return self.errors[0]


def refusal(code: str, field: str, **params: object) -> FieldError:
    """The catalogue's refusal `code` for `field`, its messages filled with `params`; a
    parameter given as a (Chinese, English) pair fills each message with its own language."""
    zh = {k: v[0] if isinstance(v, tuple) else v for k, v in params.items()}
    en = {k: v[1] if isinstance(v, tuple) else v for k, v in params.items()}
    kind = CATALOGUE[code]
    return FieldError(field, code, kind.message_zh.format(**zh), kind.message_en.format(**en))


def refuse(code: str, field: str, **params: object) -> Refused:
    """`raise refuse("outside_area", "node", what=node)`."""
    kind = CATALOGUE[code]
    headers = ({"WWW-Authenticate": "Bearer"} if kind.status == 401
               else {"Retry-After": "5"} if kind.status == 503 else None)
    return Refused(kind.status, [refusal(code, field, **params)], headers)


def problem(status: int, errors: list[FieldError], **extra: object) -> dict:
    """The Problem body every refusal answers with."""
    return {"detail": DETAILS.get(status, "refused"), "errors": [e.as_dict() for e in errors],
            **extra}


async def on_refused(request: "Request", exc: Exception) -> "JSONResponse":
    from fastapi.responses import JSONResponse

    assert isinstance(exc, Refused)
    return JSONResponse(problem(exc.status, exc.errors), status_code=exc.status,
                        headers=exc.headers)
