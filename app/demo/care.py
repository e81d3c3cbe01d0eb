"""The demo business's customer service: tickets in every state, through app/care.

About one ticket for every six customers, opened over the three months:
questions, billing disputes, faults, complaints and porting requests, by
self-care (customers who bought in the store have a login) or by phone
(care writes down what the caller said). Each ticket follows a script —
first response, a question back to the customer (pending customer), the
customer's answer, resolution, a satisfaction score, closing, or for a
complaint that went further the regulator's reference — stopped where its
target state is reached, and never beyond now. Older tickets are mostly
closed, recent ones open or waiting; some first responses come late (a
breached SLA), and a few tickets were never answered, which the breach job
flags. Every state appears at least once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session

from app.care.breaches import flag_breaches
from app.care.conversation import customer_reply, staff_reply
from app.care.models import STATUSES
from app.care.tickets import open_ticket
from app.care.workflow import assign_tickets, change_status, escalate_to_regulator, rate_ticket
from app.core.audit import Actor
from app.demo.world import DemoLine, World


@dataclass(frozen=True)
class Script:
    """What a ticket says: its subject, the customer's words and care's answers."""

    category: str
    priority: str
    subject: str
    opening: str
    answer: str
    question: str  # care asks the customer something (pending customer)
    follow_up: str  # the customer's answer
    resolution: str


SCRIPTS: tuple[Script, ...] = (
    Script(
        "inquiry",
        "low",
        "怎么查询本月剩余流量？",
        "你好，我想知道这个月还剩多少流量，在哪里能看到？",
        "您好，登录自助服务后在“我的号码”页面可以看到本期剩余的流量、通话和短信。",
        "请问您是想查询主号码还是副卡的用量？",
        "主号码，已经看到了，谢谢。",
        "已为您说明查询方式，如有其他问题欢迎随时联系。",
    ),
    Script(
        "billing_dispute",
        "normal",
        "余额被多扣了一笔",
        "我的余额少了一笔钱，但我没有办理任何新业务，请帮忙核实。",
        "您好，我们正在核实您账户的扣费记录，请稍候。",
        "经核实是套餐到期自动续费的扣款，请问您是否希望关闭自动续费？",
        "知道了，先保留自动续费吧，以后续费前提醒我一下就好。",
        "续费前会发送提醒通知，已确认您的通知设置正常。",
    ),
    Script(
        "fault",
        "high",
        "信号差，经常断网",
        "最近在家里 4G 信号很弱，看视频经常卡住，晚上尤其明显。",
        "您好，已将您的位置提交给网络运营商排查，我们会尽快回复。",
        "运营商已调整附近基站，请重启手机后再试，并告诉我们是否有改善。",
        "重启后好多了，谢谢。",
        "网络问题已解决，感谢您的耐心等待。",
    ),
    Script(
        "complaint",
        "normal",
        "客服处理太慢，要投诉",
        "上周反映的扣费问题到现在还没人处理，我要投诉。",
        "非常抱歉给您带来不便，我们已加急处理并安排专人跟进。",
        "请提供一下扣费的日期和金额，方便我们核对。",
        "如果这周还不解决，我会向工信部投诉。",
        "已为您退回有争议的费用，再次向您致歉。",
    ),
    Script(
        "porting",
        "normal",
        "携号转网需要什么条件？",
        "我想把号码转到别的运营商，需要满足什么条件？",
        "您好，携号转网需号码已实名、无欠费且在网满 120 天。",
        "请问您的号码目前是否还有未到期的合约？",
        "没有合约，我再考虑一下。",
        "已为您说明携转条件，如需办理可再联系我们。",
    ),
    Script(
        "inquiry",
        "normal",
        "Roaming in Hong Kong?",
        "Hello, will my plan work when I travel to Hong Kong next month?",
        "Hello, roaming is not part of our plans yet; your line works in mainland China only.",
        "Would you like us to tell you when roaming packs become available?",
        "Yes please, thank you.",
        "We have noted your interest and will let you know.",
    ),
)

# Target states by the ticket's age in days: (least age, weights in STATUSES order).
AGES = (
    (10, (4, 12, 12, 62, 10)),
    (3, (15, 35, 35, 5, 10)),
    (0, (55, 35, 10, 0, 0)),
)


@dataclass
class TicketPlan:
    """One ticket to open: when, whose, which script and where it stops."""

    day: int
    line: DemoLine | None
    script: Script
    target: str
    late: bool


def plan_tickets(world: World) -> list[TicketPlan]:
    """The tickets of the replay, oldest first, every state present at least once.

    Whose ticket it is is drawn when it opens, among the lines of that day.
    """
    count = max(world.size // 6, len(STATUSES))
    days = sorted(world.rng.randrange(1, world.days) for _ in range(count))
    plans: list[TicketPlan] = []
    for day in days:
        age = world.days - 1 - day
        weights = next(w for least, w in AGES if age >= least)
        target = world.rng.choices(STATUSES, weights=weights)[0]
        plans.append(TicketPlan(day, None, SCRIPTS[0], target, world.rng.random() < 0.2))
    old = [plan for plan in plans if world.days - 1 - plan.day >= 10]
    for state in STATUSES:
        if not any(p.target == state for p in plans) and old:
            old.pop(0).target = state
    return plans


def _cast(world: World, plan: TicketPlan) -> DemoLine | None:
    """Draw the customer (a line of theirs) and the script of a ticket that opens now."""
    lines = [line for line in world.lines if not line.fraud]
    if not lines:
        return None
    plan.line = world.rng.choice(lines)
    if plan.target == "escalated":
        plan.script = SCRIPTS[3]
    elif plan.line.account_id is not None and world.rng.random() < 0.1:
        plan.script = SCRIPTS[5]
    else:
        plan.script = world.rng.choice(SCRIPTS[:5])
    return plan.line


class Desk:
    """Care's hands on one ticket: who speaks, and when (never after now)."""

    def __init__(
        self, session: Session, world: World, plan: TicketPlan, line: DemoLine, care: Actor
    ) -> None:
        self.session, self.world, self.plan, self.care = session, world, plan, care
        self.line = line
        self.self_care = line.account_id is not None
        self.customer = world.buyer(line) or care
        self.when = world.at(plan.day, world.rng.uniform(8.5, 20.5))
        self.ticket_id = 0

    def later(self, hours: float) -> bool:
        """Move the clock on by `hours`; False when that would pass now."""
        self.when += timedelta(hours=hours)
        return self.when < self.world.now

    def open(self) -> None:
        """Open the ticket with the customer's words and give it to care."""
        script, line = self.plan.script, self.line
        ticket = open_ticket(
            self.session,
            category=script.category,
            channel="self_care" if self.self_care else "phone",
            subject=script.subject,
            body=script.opening,
            actor=self.customer,
            now=self.when,
            timezone=self.world.timezone,
            priority=script.priority,
            customer_id=line.customer_id,
            line_id=line.line_id,
        )
        assert ticket.id is not None and self.care.id is not None
        self.ticket_id = ticket.id
        assign_tickets(
            self.session,
            ticket_ids=[ticket.id],
            assignee_id=self.care.id,
            actor=self.care,
            now=self.when + timedelta(minutes=10),
        )
        self.world.count("tickets_opened")

    def answer(self, body: str) -> None:
        """Care answers the customer."""
        staff_reply(
            self.session,
            ticket_id=self.ticket_id,
            body=body,
            visibility="customer",
            actor=self.care,
            now=self.when,
        )

    def customer_says(self, body: str) -> None:
        """The customer replies: in self-care, or by phone (care notes it and reopens)."""
        if self.self_care:
            customer_reply(
                self.session,
                ticket_id=self.ticket_id,
                customer_id=self.line.customer_id,
                body=body,
                actor=self.customer,
                now=self.when,
                timezone=self.world.timezone,
            )
            return
        staff_reply(
            self.session,
            ticket_id=self.ticket_id,
            body=f"客户来电：{body}",
            visibility="internal",
            actor=self.care,
            now=self.when,
        )
        self.status("open")

    def status(self, status: str) -> None:
        """Care moves the ticket to `status`."""
        change_status(
            self.session,
            ticket_id=self.ticket_id,
            status=status,
            actor=self.care,
            now=self.when,
            timezone=self.world.timezone,
        )


def _conversation(desk: Desk, plan: TicketPlan) -> bool:
    """First answer, a question back and the customer's reply; False when stopped."""
    script, rng = plan.script, desk.world.rng
    if plan.target == "open" and not rng.random() < 0.5:
        return False  # never answered yet: the breach job flags it
    if not desk.later(rng.uniform(26, 50) if plan.late else rng.uniform(0.3, 4)):
        return False
    desk.answer(script.answer)
    if plan.target == "open":
        return False
    if not desk.later(rng.uniform(1, 20)):
        return False
    desk.answer(script.question)
    desk.status("pending_customer")
    if plan.target == "pending_customer" or not desk.later(rng.uniform(3, 40)):
        return False
    desk.customer_says(script.follow_up)
    return True


def _ending(desk: Desk, plan: TicketPlan) -> None:
    """Escalation, or resolution, a score and closing, as far as the target and now allow."""
    rng = desk.world.rng
    if plan.target == "escalated":
        if desk.later(rng.uniform(20, 48)):
            escalate_to_regulator(
                desk.session,
                ticket_id=desk.ticket_id,
                reference=f"MIIT-{desk.when:%Y}-{rng.randrange(10**6, 10**7)}",
                escalated_on=desk.when.astimezone(desk.world.zone).date(),
                actor=desk.care,
                now=desk.when,
                timezone=desk.world.timezone,
            )
            desk.world.count("escalations")
        return
    if not desk.later(rng.uniform(2, 30)):
        return
    desk.answer(plan.script.resolution)
    desk.status("resolved")
    if rng.random() < 0.75 and desk.later(rng.uniform(1, 24)):
        score = rng.choices((5, 4, 3, 2, 1), weights=(40, 30, 15, 10, 5))[0]
        rate_ticket(
            desk.session,
            ticket_id=desk.ticket_id,
            customer_id=desk.line.customer_id,
            score=score,
            actor=desk.customer if desk.self_care else Actor.system("满意度回访"),
            now=desk.when,
        )
        desk.world.count("tickets_rated")
    if plan.target == "closed" and desk.later(rng.uniform(72, 120)):
        desk.status("closed")


def tickets_of_day(
    session: Session, world: World, plans: list[TicketPlan], *, n: int, care: Actor
) -> None:
    """Open and play out the tickets planned for day `n`, then flag the day's breaches."""
    for plan in plans:
        if plan.day != n:
            continue
        line = _cast(world, plan)
        if line is None:
            continue
        desk = Desk(session, world, plan, line, care)
        desk.open()
        if _conversation(desk, plan):
            _ending(desk, plan)
    flag_breaches(session, now=world.at(n, 23.9))
