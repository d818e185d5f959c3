"""The ledger's HTTP bodies."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TeamMember(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str = Field(examples=["village_cadre"], description="a role of regimes.toml [team]")
    staff: str = Field(min_length=1, max_length=100, examples=["李主任"])


class Registration(BaseModel):
    """A person taken under control (一人一案). `name` and `contact` stay in the ledger: only
    the village's and the town's operators ever read them back."""

    model_config = ConfigDict(extra="forbid")
    village: str = Field(examples=["430621108001"])
    name: str = Field(min_length=1, max_length=100)
    contact: str | None = Field(default=None, max_length=100)
    category: str = Field(examples=["close_contact"])
    regime: str = Field(examples=["7+7"])
    site: str | None = Field(default=None, max_length=100,
                             description="the named isolation site, for a regime that starts "
                                         "in central isolation")
    start_day: date = Field(description="day 0: arrival, or the day the measure began")
    team: list[TeamMember] = Field(default=[], description="the 五包一 team, up to five")


class TestResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: date
    result: Literal["negative", "positive", "pending"] = "negative"


class Release(BaseModel):
    """Ends the current phase on `day` (解除): the next phase starts that day; ending the last
    closes the file (销账) with `outcome`. `outcome` alone closes it early (hospitalised...)."""

    model_config = ConfigDict(extra="forbid")
    day: date
    outcome: str | None = Field(default=None, examples=["completed"],
                                description="required to close the file: regimes.toml "
                                            "[outcomes]")
    site: str | None = Field(default=None, max_length=100,
                             description="the named site of a next phase spent at a site")


class SignOff(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: date
    seat: int = Field(ge=1, le=5, description="the team member's seat (1-5)")
    signed_at: datetime | None = Field(default=None, description="when; default now")


class Correction(BaseModel):
    """A registration corrected: only the fields given change (`contact` or `site` given as
    null are cleared), with the reason why. The village is not corrected: its alerts and
    headcounts were announced there (close the file and register the person anew)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500, examples=["姓名录入错误"])
    name: str | None = Field(default=None, min_length=1, max_length=100)
    contact: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, examples=["close_contact"])
    regime: str | None = Field(default=None, examples=["7+7"])
    site: str | None = Field(default=None, max_length=100)
    start_day: date | None = Field(default=None, description="day 0: re-plans what is due")
    village: str | None = Field(default=None, description="refused: see above")
