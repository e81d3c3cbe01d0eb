"""The demo's people: real-name data drawn from a seeded generator.

Everything here is a pure function of the `random.Random` handed in, so the
same seed gives the same names, resident IDs, e-mail addresses, numbers and
SIMs. Resident IDs carry a correct check digit (ISO 7064 MOD 11-2) and a
birth date between 1960 and 2005; e-mail addresses are on `example.com`
domains (RFC 2606), so nothing is ever sent to a real mailbox.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from stdnum import luhn
from stdnum.cn import ric

# (surname, pinyin), the commonest first; weights follow their rough frequency.
SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("吴", "wu"),
    ("周", "zhou"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("罗", "luo"),
    ("高", "gao"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("许", "xu"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
)

GIVEN_NAMES: tuple[tuple[str, str], ...] = (
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("磊", "lei"),
    ("强", "qiang"),
    ("洋", "yang"),
    ("艳", "yan"),
    ("勇", "yong"),
    ("军", "jun"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("超", "chao"),
    ("明", "ming"),
    ("霞", "xia"),
    ("秀英", "xiuying"),
    ("桂英", "guiying"),
    ("建华", "jianhua"),
    ("建国", "jianguo"),
    ("志强", "zhiqiang"),
    ("晓明", "xiaoming"),
    ("丽娟", "lijuan"),
    ("海燕", "haiyan"),
    ("子涵", "zihan"),
    ("浩然", "haoran"),
    ("雨萱", "yuxuan"),
    ("梓轩", "zixuan"),
    ("欣怡", "xinyi"),
    ("宇航", "yuhang"),
    ("思远", "siyuan"),
    ("佳琪", "jiaqi"),
)

# A few customers who registered with a name in Latin letters (a Chinese
# resident's ID all the same): the console must show both kinds.
LATIN_NAMES: tuple[str, ...] = (
    "Chen Jie",
    "Wang Fang",
    "Liu Yang",
    "Zhao Lei",
    "Anna Li",
    "David Zhou",
)

# Administrative division codes of a few cities (Beijing, Shanghai,
# Shenzhen, Guangzhou, Hangzhou, Chengdu, Wuhan, Nanjing, Xi'an, Chongqing).
AREA_CODES: tuple[str, ...] = (
    "110105",
    "310104",
    "440304",
    "440106",
    "330106",
    "510107",
    "420106",
    "320102",
    "610113",
)

MAIL_DOMAINS: tuple[str, ...] = ("example.com", "example.net", "example.org")


@dataclass(frozen=True)
class Person:
    """One demo customer's real-name data (`email` empty: reached by SMS only)."""

    name: str
    email: str
    id_number: str
    locale: str


def resident_id(rng: random.Random) -> str:
    """A Chinese resident ID number that passes the real-name check.

    Drawn again while the region did not exist under that code at the birth
    date (the check knows the history of the codes).
    """
    while True:
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(46 * 365))
        body = f"{rng.choice(AREA_CODES)}{born:%Y%m%d}{rng.randrange(1, 1000):03d}"
        number = body + ric.calc_check_digit(body + "0")  # the digit replaces the last
        if ric.is_valid(number):
            return number


def make_people(rng: random.Random, count: int) -> list[Person]:
    """`count` distinct people: Chinese names mostly, a few Latin ones, most with e-mail."""
    people: list[Person] = []
    for n in range(1, count + 1):
        surname, surname_py = rng.choice(SURNAMES)
        given, given_py = rng.choice(GIVEN_NAMES)
        latin = rng.random() < 0.04
        name = rng.choice(LATIN_NAMES) if latin else surname + given
        local = f"{surname_py}.{given_py}{n:03d}"
        email = f"{local}@{rng.choice(MAIL_DOMAINS)}" if rng.random() < 0.88 else ""
        locale = "en" if latin else "zh_Hans"
        people.append(Person(name=name, email=email, id_number=resident_id(rng), locale=locale))
    return people


def pick_numbers(
    rng: random.Random, *, prefix: str, count: int, first: int, last: int
) -> list[str]:
    """`count` distinct numbers `prefix` + 4 digits in [first, last], in a shuffled order."""
    return [f"{prefix}{n:04d}" for n in rng.sample(range(first, last + 1), count)]


def sim_stock_csv(*, first: int, count: int, esim_every: int = 4) -> str:
    """A SIM stock file (`iccid,imsi,kind,lpa`) of `count` SIMs from serial `first`:
    Luhn-valid ICCIDs of the demo's own range; every `esim_every`-th one an eSIM."""
    rows = ["iccid,imsi,kind,lpa"]
    for n in range(first, first + count):
        body = f"898601270{n:09d}"
        esim = n % esim_every == 0
        lpa = f"LPA:1$smdp.example.com$DEMO-BIZ-{n:05d}" if esim else ""
        kind = "esim" if esim else "physical"
        rows.append(f"{body}{luhn.calc_check_digit(body)},46001810{n:07d},{kind},{lpa}")
    return "\n".join(rows) + "\n"
