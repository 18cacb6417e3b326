"""Seeded generator of the embedded bilingual demo NER corpus.

The demo corpus is the default input of the whole pipeline (ingest, label
standardization, conflict screening, cross-dataset model validation, pruning,
instruction tuning, evaluation). It is small enough to run end to end in minutes on
two CPU cores, yet it reproduces what the B2NERD paper (section 2.2, section 3.1,
appendix A.2, figure 2) says makes raw NER collections hard to combine: the same
label name means different things in different datasets.

Datasets, each written in the raw format of a real dataset it imitates:

==============  ======  ========================  ==========================================
dataset         lang    format (files)            labels
==============  ======  ========================  ==========================================
demo_news_en    en      conll, BIO, -DOCSTART-    PER ORG LOC MISC (CoNLL-2003 scope)
demo_wiki_en    en      b2nerd JSON lines         person organization location GPE (OntoNotes)
demo_social_en  en      conll, BIOES              PER ORG LOC (PER includes nominals)
demo_bio_en     en      genia JSON array          protein DNA cell_type (nested)
demo_news_zh    zh      cluener JSON lines        name company government organization address
demo_weibo_zh   zh      conll, char+digit, BIO    PER.NAM PER.NOM ORG.NAM GPE.NAM LOC.NAM
demo_med_zh     zh      cmeee JSON array          dis sym bod dru (nested)
demo_resume_zh  zh      conll, space, BMES        NAME ORG TITLE EDU
==============  ======  ========================  ==========================================

Sentences come from templates filled from shared gazetteers, and every dataset
annotates the same kinds of mention by its own policy. Because datasets of one
language share gazetteers (and partly templates), the same surface mentions get
different labels across datasets. Deliberate conflicts, which later stages must find:

1. Location scope. demo_news_en tags cities and countries ("Paris", "Germany",
   "New York") LOC, like natural places ("Mount Fuji"); demo_wiki_en tags the same
   cities and countries GPE and only natural places and streets location.
   demo_news_zh tags cities, provinces and countries ("北京", "广东省") and natural
   places ("西湖") address; demo_weibo_zh splits them into GPE.NAM and LOC.NAM.
2. Named versus nominal persons. demo_social_en tags nominal mentions ("the
   president", "my brother") PER; demo_news_en and demo_wiki_en leave the very same
   phrases untagged. Likewise demo_weibo_zh tags "老师", "妈妈" PER.NOM and
   demo_news_zh leaves them untagged.
3. Span convention. demo_news_en (and demo_wiki_en) tag "Mr. John Smith" and
   "President John Smith" as the bare name "John Smith"; demo_social_en tags the
   whole "Mr. John Smith" PER.
4. Coarse versus fine. demo_news_zh splits organizations into company ("华为"),
   government ("外交部") and organization ("北京大学"); demo_weibo_zh tags all three
   ORG.NAM and demo_resume_zh tags them ORG.
5. Coverage. demo_news_en tags nationalities and events ("German", "World Cup")
   MISC; no other English dataset annotates them.

Consistent pairs exist too, so a consistent pair can rank low in conflict screening:
named persons (demo_news_en PER = demo_wiki_en person = demo_social_en PER for bare
names; demo_news_zh name = demo_weibo_zh PER.NAM = demo_resume_zh NAME) and
organizations (demo_news_en ORG = demo_wiki_en organization = demo_social_en ORG).

Train sentences draw entities only from the "seen" part of each gazetteer; dev and
test sentences draw half of their entities from a held-out part, so evaluation
measures generalization to unseen entities. About one sentence in ten has no entity.

Usage: ``python -m tasks.demo_corpus.generate --out data/raw/demo --seed 0 [--scale 1.0]``.
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tasks.core.schema import ENTITY_DTYPE
from tasks.formats import FormatSpec, registry

# ---------------------------------------------------------------------------
# Gazetteers. English multi-word entries are single-space separated tokens;
# Chinese entries are character strings without spaces.
# ---------------------------------------------------------------------------

EN_FIRST_NAMES = (
    "John Mary James Linda Robert Susan Michael Karen David Nancy William Sarah "
    "Thomas Emily Carlos Maria Ahmed Fatima Hiroshi Yuki Ivan Olga Pierre Amara"
).split()
EN_LAST_NAMES = (
    "Smith Johnson Brown Taylor Miller Wilson Clark Walker Lopez Garcia Schmidt Rossi Tanaka Petrov Kumar Okafor"
).split()
EN_PERSON_TITLES = (
    "Mr.",
    "Mrs.",
    "Ms.",
    "Dr.",
    "Prof.",
    "President",
    "Senator",
    "Minister",
    "General",
    "Judge",
)
EN_NOMINAL_PERSONS = (
    "the president",
    "my brother",
    "my sister",
    "the minister",
    "her mother",
    "his father",
    "the coach",
    "a spokesman",
    "the doctor",
    "my friend",
    "his wife",
    "the teacher",
    "our neighbor",
    "the chairman",
    "the mayor",
    "a witness",
    "the driver",
    "the police officer",
    "my boss",
    "the lawyer",
    "the nurse",
    "my cousin",
    "the pilot",
    "the senator",
)
EN_ORGANIZATIONS = (
    "United Nations",
    "World Bank",
    "European Union",
    "Red Cross",
    "NATO",
    "FIFA",
    "UNICEF",
    "Greenpeace",
    "Interpol",
    "OPEC",
    "World Health Organization",
    "Amnesty International",
    "Harvard University",
    "Oxford University",
    "Stanford University",
    "Microsoft",
    "Toyota",
    "Siemens",
    "Nestle",
    "Boeing",
    "Airbus",
    "Samsung",
    "Sony",
    "Reuters",
    "BBC",
    "General Motors",
    "Deutsche Bank",
    "Goldman Sachs",
    "Volkswagen",
    "Nokia",
    "Unilever",
    "Pfizer",
    "Novartis",
    "IBM",
    "Intel",
    "Oracle",
    "Manchester United",
    "Real Madrid",
    "Ajax",
    "Lakers",
    "Yankees",
    "Federal Reserve",
    "Apex Dynamics",
    "Northwind Traders",
    "Blue Harbor Capital",
    "Silverline Energy",
    "Crescent Pharma",
    "Summit Foods",
    "Oakridge Labs",
    "Meridian Bank",
    "Atlas Logistics",
    "Greenfield Motors",
    "Bright Path Media",
    "Ironwood Mining",
    "Polar Star Airlines",
    "Harbor Point Insurance",
)
# Geo-political entities: cities, states and countries (OntoNotes GPE, CoNLL LOC).
EN_GEOPOLITICAL_ENTITIES = (
    "Paris",
    "London",
    "Berlin",
    "Tokyo",
    "Beijing",
    "Moscow",
    "Madrid",
    "Rome",
    "Cairo",
    "Nairobi",
    "Lagos",
    "Sydney",
    "Toronto",
    "Chicago",
    "Boston",
    "Mumbai",
    "Seoul",
    "Bangkok",
    "Jakarta",
    "Lima",
    "Vienna",
    "Prague",
    "Warsaw",
    "Dublin",
    "Lisbon",
    "Athens",
    "Istanbul",
    "Dubai",
    "New York",
    "Los Angeles",
    "Hong Kong",
    "Buenos Aires",
    "Cape Town",
    "Rio de Janeiro",
    "France",
    "Germany",
    "Japan",
    "China",
    "Russia",
    "Spain",
    "Italy",
    "Egypt",
    "Kenya",
    "Nigeria",
    "Australia",
    "Canada",
    "Brazil",
    "India",
    "Mexico",
    "Argentina",
    "Poland",
    "Ireland",
    "Portugal",
    "Greece",
    "Turkey",
    "Sweden",
    "Norway",
    "New Zealand",
    "South Africa",
    "United States",
    "Minnesota",
    "Texas",
    "California",
    "Bavaria",
    "Ontario",
    "Scotland",
)
# Non-GPE locations: mountains, waters, parks, squares, streets (OntoNotes LOC/FAC).
EN_LOCATIONS = (
    "Times Square",
    "Central Park",
    "Hyde Park",
    "Red Square",
    "Trafalgar Square",
    "Mount Everest",
    "Mount Fuji",
    "Mount Kilimanjaro",
    "Table Mountain",
    "Lake Victoria",
    "Lake Geneva",
    "Lake Tahoe",
    "Loch Ness",
    "Niagara Falls",
    "Victoria Falls",
    "Death Valley",
    "Silicon Valley",
    "Yosemite Valley",
    "Bondi Beach",
    "Copacabana Beach",
    "Waikiki Beach",
    "Cape Horn",
    "Hudson Bay",
    "Baffin Island",
    "Gobi Desert",
    "Kalahari Desert",
    "Fifth Avenue",
    "Oxford Street",
    "Abbey Road",
    "Sunset Boulevard",
    "Amazon Basin",
    "Danube Delta",
)
EN_NATIONALITIES = (
    "German",
    "French",
    "British",
    "Japanese",
    "Chinese",
    "Brazilian",
    "Italian",
    "Spanish",
    "Russian",
    "Indian",
    "Kenyan",
    "Mexican",
    "Canadian",
    "Australian",
    "Swedish",
    "Irish",
    "Polish",
    "Egyptian",
    "Nigerian",
    "Korean",
)
EN_EVENTS = (
    "World Cup",
    "Olympics",
    "Tour de France",
    "Champions League",
    "Super Bowl",
    "Grand Prix",
    "Davis Cup",
    "Ryder Cup",
    "Eurovision Song Contest",
    "Commonwealth Games",
    "Asian Games",
    "Nobel Prize",
)
EN_PROTEINS = (
    "IL-2",
    "IL-4",
    "IL-6",
    "IL-10",
    "TNF-alpha",
    "NF-kappa B",
    "p53",
    "c-Jun",
    "c-Fos",
    "STAT3",
    "STAT5",
    "GATA-3",
    "AP-1",
    "Oct-1",
    "Oct-2",
    "CD28",
    "CD4",
    "Bcl-2",
    "c-Myc",
    "interferon-gamma",
    "IRF-1",
    "PU.1",
    "Ets-1",
    "Sp1",
    "CREB",
    "NFAT",
    "T-bet",
    "Foxp3",
    "RelA",
    "p50",
    "IkappaB alpha",
    "JAK2",
    "Egr-1",
    "GM-CSF",
    "CIITA",
    "Tat",
)
# A protein name followed by one of these is a DNA mention with the protein nested inside.
EN_DNA_SUFFIXES = ("gene", "promoter", "enhancer", "locus", "promoter region", "binding site", "cDNA")
EN_DNA_ELEMENTS = (
    "kappa B site",
    "long terminal repeat",
    "TATA box",
    "HIV-1 LTR",
    "CpG island",
    "E-box motif",
    "GC box",
    "octamer motif",
    "interferon-stimulated response element",
    "glucocorticoid response element",
    "cAMP response element",
    "Y box",
    "Alu repeat",
    "HLA-DR locus",
    "beta-globin gene",
)
EN_CELL_TYPES = (
    "T cells",
    "B cells",
    "monocytes",
    "macrophages",
    "human T lymphocytes",
    "natural killer cells",
    "dendritic cells",
    "neutrophils",
    "eosinophils",
    "erythroid cells",
    "thymocytes",
    "CD4+ T cells",
    "peripheral blood lymphocytes",
    "mast cells",
    "hematopoietic progenitor cells",
    "endothelial cells",
    "fibroblasts",
    "keratinocytes",
    "B lymphocytes",
    "plasma cells",
    "memory T cells",
    "platelets",
)

ZH_SURNAMES = "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 高 罗 郑 梁 谢 唐".split()
ZH_GIVEN_NAMES = "伟 芳 敏 静 强 磊 军 洋 杰 涛 明 超 建国 晓东 海燕 志强".split()
ZH_NOMINAL_PERSONS = (
    "老师 妈妈 爸爸 记者 医生 同学 老板 邻居 警察 司机 网友 闺蜜 姐姐 哥哥 老爹 女孩 男朋友 主持人 导演 室友"
).split()
ZH_COMPANIES = (
    "阿里巴巴 腾讯公司 华为 百度 京东 小米 联想集团 海尔 格力电器 比亚迪 中国银行 招商银行 浙商银行 "
    "中国移动 美团 网易 新浪 万科 苏宁 李宁公司 中兴通讯 顺丰速运 携程 拼多多 宁德时代 海康威视"
).split()
ZH_GOVERNMENT_BODIES = (
    "国务院 外交部 教育部 财政部 公安部 商务部 卫健委 国家统计局 北京市政府 上海市政府 广东省政府 "
    "最高人民法院 海关总署 国家发改委 证监会 杭州市政府 成都市教育局 深圳市交通局"
).split()
ZH_OTHER_ORGANIZATIONS = (
    "北京大学 清华大学 复旦大学 浙江大学 武汉大学 中山大学 中国科学院 红十字会 中国足协 北京国安 "
    "上海申花 联合国 世界卫生组织 国际奥委会 中华医学会 中国作家协会"
).split()
ZH_GEOPOLITICAL_ENTITIES = (
    "北京 上海 广州 深圳 杭州 南京 成都 武汉 西安 重庆 天津 苏州 长沙 郑州 青岛 厦门 昆明 哈尔滨 "
    "广东省 浙江省 江苏省 四川省 湖南省 山东省 河南省 云南省 福建省 "
    "中国 美国 日本 韩国 英国 法国 德国 俄罗斯 香港 澳门 新加坡"
).split()
ZH_LOCATIONS = (
    "长江 黄河 泰山 黄山 西湖 太湖 珠江 华山 峨眉山 天安门广场 南京路 中关村大街 王府井大街 外滩 "
    "鼓浪屿 九寨沟 洞庭湖 青藏高原 长白山 漓江"
).split()
ZH_JOB_TITLES = (
    "总经理 董事长 工程师 高级工程师 会计师 副总裁 主任 经理 总监 教授 研究员 律师 独立董事 监事 "
    "财务总监 技术总监 副总经理 董事会秘书"
).split()
ZH_EDUCATION_LEVELS = "本科 硕士 博士 大专 中专 硕士研究生 博士研究生 高中 研究生 MBA".split()
ZH_DISEASES = (
    "糖尿病 高血压 肺炎 冠心病 哮喘 胃炎 乙型肝炎 贫血 肺结核 支气管炎 类风湿关节炎 甲状腺功能亢进 "
    "脑梗死 急性阑尾炎 慢性肾炎 过敏性鼻炎 手足口病 病毒性心肌炎 川崎病 湿疹"
).split()
ZH_BODY_PARTS = "头部 胸部 腹部 腰部 背部 肝脏 肾脏 心脏 肺部 胃部 咽喉 左膝 右肩 颈部 皮肤 双下肢 关节 眼睛".split()
ZH_SYMPTOMS = "发热 咳嗽 头痛 乏力 恶心 呕吐 腹泻 气促 心悸 盗汗 皮疹 食欲不振 体重下降 嗜睡 胸闷 鼻塞".split()
# A body part followed by one of these is a symptom with the body part nested inside (as in CMeEE).
ZH_SYMPTOM_SUFFIXES = "疼痛 肿胀 不适 压痛 麻木 瘙痒".split()
ZH_DRUGS = (
    "阿莫西林 布洛芬 对乙酰氨基酚 阿司匹林 二甲双胍 胰岛素 头孢克肟 青霉素 地塞米松 奥美拉唑 "
    "硝苯地平 氯雷他定 蒙脱石散 利巴韦林 阿奇霉素 维生素C 葡萄糖酸钙 氨溴索"
).split()
ZH_PUNCTUATION = frozenset("，。！？、：；“”（）…")

# Open-class gazetteers, split per seed into entities seen in training and held out.
GAZETTEERS: dict[str, tuple[str, ...]] = {
    "en_person": tuple(f"{first} {last}" for first in EN_FIRST_NAMES for last in EN_LAST_NAMES),
    "en_nominal_person": EN_NOMINAL_PERSONS,
    "en_organization": EN_ORGANIZATIONS,
    "en_geopolitical": EN_GEOPOLITICAL_ENTITIES,
    "en_location": EN_LOCATIONS,
    "en_nationality": EN_NATIONALITIES,
    "en_event": EN_EVENTS,
    "en_protein": EN_PROTEINS,
    "en_dna_element": EN_DNA_ELEMENTS,
    "en_cell_type": EN_CELL_TYPES,
    "zh_person": tuple(surname + given for surname in ZH_SURNAMES for given in ZH_GIVEN_NAMES),
    "zh_nominal_person": tuple(ZH_NOMINAL_PERSONS),
    "zh_company": tuple(ZH_COMPANIES),
    "zh_government": tuple(ZH_GOVERNMENT_BODIES),
    "zh_organization": tuple(ZH_OTHER_ORGANIZATIONS),
    "zh_geopolitical": tuple(ZH_GEOPOLITICAL_ENTITIES),
    "zh_location": tuple(ZH_LOCATIONS),
    "zh_job_title": tuple(ZH_JOB_TITLES),
    "zh_education": tuple(ZH_EDUCATION_LEVELS),
    "zh_disease": tuple(ZH_DISEASES),
    "zh_body_part": tuple(ZH_BODY_PARTS),
    "zh_symptom": tuple(ZH_SYMPTOMS),
    "zh_drug": tuple(ZH_DRUGS),
}

HELD_OUT_FRACTION = 0.2  # share of each gazetteer that never occurs in training sentences
UNSEEN_DRAW_PROBABILITY = 0.5  # chance that a dev/test mention comes from the held-out share
EMPTY_SENTENCE_PROBABILITY = 0.1
TITLED_PERSON_PROBABILITY = 0.25
NESTED_COMPOUND_PROBABILITY = 0.5

# ---------------------------------------------------------------------------
# Templates. English templates are single-space separated tokens; a token
# "{slot}" is filled by the slot's filler. Chinese templates embed "{slot}".
# ---------------------------------------------------------------------------

EN_GENERAL_TEMPLATES = (
    "{person} met {org} officials in {gpe} on Monday .",
    "{org} said on Tuesday it would open a new office in {gpe} .",
    "{person} , a spokesman for {org} , declined to comment .",
    "Thousands of tourists visited {loc} near {gpe} last summer .",
    "Speaking to reporters , {nominal} said {person} had left {gpe} .",
    "The {nationality} team won the {event} after beating {gpe} 2-1 .",
    "{person} was born in {gpe} and studied at {org} .",
    "Police closed {loc} after {nominal} reported a fire .",
    "{org} shares fell 3 percent in {gpe} trading .",
    "{person} will represent {gpe} at the {event} .",
    "Flights between {gpe} and {gpe} were cancelled because of snow .",
    "According to {nominal} , the {nationality} government supports {org} .",
    "{person} and {person} signed the agreement in {gpe} .",
    "Heavy rain flooded roads around {loc} on Sunday .",
    "{org} hired {person} as its new chief executive .",
    "Speaking in {gpe} , {person} criticised {org} .",
    "Rescue teams searched {loc} for two missing climbers , {nominal} said .",
    "The {event} will be held in {gpe} next year .",
    "{person} thanked {nominal} for the support .",
    "{nationality} investors bought a stake in {org} .",
    "{org} and {org} agreed to merge , {person} said .",
    "A new bridge will connect {loc} with downtown {gpe} .",
    "{person} , who lives near {loc} , joined {org} in 2019 .",
    "Yesterday {nominal} from {gpe} won a medal at the {event} .",
)
EN_GENERAL_EMPTY_TEMPLATES = (
    "Stocks were little changed in early trading .",
    "The meeting ended without an agreement .",
    "Officials expect the weather to improve later this week .",
    "No further details were released .",
    "Results of the survey will be published next month .",
)
EN_SOCIAL_TEMPLATES = (
    "omg {nominal} just landed in {gpe} !!",
    "had dinner with {person} near {loc} tonight",
    "can't believe {org} cancelled my order again",
    "guess who says hi from {gpe} ? {nominal} :)",
    "shoutout to {person} and {nominal} for the help",
    "stuck in traffic by {loc} for an hour ...",
    "{person} is speaking at {org} tomorrow , who is going ?",
    "my flight to {gpe} got delayed , thanks {org}",
    "lol {nominal} still thinks {gpe} is the best city",
    "watching {person} live from {loc} right now",
    "just met {nominal} at the {org} store",
    "{person} please come back to {gpe} !",
)
EN_SOCIAL_EMPTY_TEMPLATES = (
    "so tired today",
    "best day ever !!",
    "anyone else awake ?",
    "lol this is fine",
)
EN_BIOMEDICAL_TEMPLATES = (
    "{protein} activates the {dna} in {cell} .",
    "Expression of the {dna} was induced in {cell} .",
    "{protein} binds directly to the {dna} .",
    "We show that {protein} and {protein} cooperate in {cell} .",
    "Transcription of the {dna} requires {protein} .",
    "{cell} stimulated with {protein} produced high levels of {protein} .",
    "The {dna} contains a binding site for {protein} .",
    "Activation of {protein} was not observed in resting {cell} .",
    "{protein} inhibits {protein} expression in {cell} .",
    "These results suggest a role for {protein} in the differentiation of {cell} .",
    "Mutation of the {dna} abolished {protein} binding .",
    "In {cell} , {protein} is required for induction of the {dna} .",
)
EN_BIOMEDICAL_EMPTY_TEMPLATES = (
    "These results were reproducible in three independent experiments .",
    "Data are shown as mean values of triplicate samples .",
    "The underlying mechanism remains unclear .",
)

ZH_GENERAL_TEMPLATES = (
    "{name}昨天在{gpe}会见了{company}的代表。",
    "{government}发布通知，要求各地做好防汛工作。",
    "{company}宣布将在{gpe}建设新的研发中心。",
    "{name}表示，{organization}将继续支持青少年体育。",
    "周末很多游客来到{loc}游玩，{nominal}说人特别多。",
    "{nominal}透露，{name}已经离开了{gpe}。",
    "{gpe}和{gpe}之间的高铁今天正式开通。",
    "{company}董事长{name}出席了在{gpe}举行的发布会。",
    "{government}与{organization}签署了合作协议。",
    "{name}毕业于{organization}，现在在{company}工作。",
    "据{government}消息，{loc}景区将于下月重新开放。",
    "{name}和{name}在{loc}附近拍摄了一部纪录片。",
    "{company}股价今天上涨了百分之三，{gpe}投资者十分关注。",
    "{nominal}在{gpe}的{company}门店买了一部手机。",
    "今年夏天{loc}游客数量创下新高，{government}加强了管理。",
    "{organization}代表团抵达{gpe}进行访问。",
    "{name}向{government}提交了一份调查报告。",
    "{gpe}的{nominal}自发组织清理{loc}的垃圾。",
    "{company}与{company}达成战略合作，{name}表示很满意。",
    "来自{gpe}的{name}加入了{organization}。",
)
ZH_GENERAL_EMPTY_TEMPLATES = (
    "今天天气晴朗，适合出行。",
    "会议在热烈的气氛中结束。",
    "相关细节尚未公布。",
    "市场整体表现平稳。",
)
ZH_WEIBO_TEMPLATES = (
    "今天和{nominal}去{loc}玩啦，好开心！",
    "{name}的新歌太好听了吧",
    "在{gpe}机场等了三个小时，{company}能不能靠谱点",
    "{nominal}说{gpe}的火锅最好吃哈哈",
    "求{name}来{gpe}开演唱会！！",
    "终于收到{company}的快递了",
    "{nominal}生日快乐，{name}也来祝福啦",
    "周末打算去{loc}拍照，有人一起吗",
    "{government}的通知看到了吗？{nominal}让我转发",
    "支持{organization}！加油！",
)
ZH_WEIBO_EMPTY_TEMPLATES = (
    "好累啊，想睡觉",
    "今天心情不错",
    "哈哈哈哈笑死我了",
)
ZH_RESUME_TEMPLATES = (
    "{name}，男，{edu}学历，现任{company}{title}。",
    "{name}女士，{edu}学历，曾任{government}{title}。",
    "{name}先生，毕业于{organization}，{edu}学历。",
    "{edu}毕业后加入{company}，担任{title}。",
    "{name}，历任{company}{title}、{company}{title}。",
    "现任{company}独立董事、{organization}{title}。",
    "{name}，中国国籍，无境外永久居留权，{edu}学历。",
    "{name}自2008年起任{company}{title}。",
    "曾在{government}工作，后任{company}{title}。",
    "{name}同时兼任{organization}{title}。",
)
ZH_RESUME_EMPTY_TEMPLATES = (
    "无境外永久居留权。",
    "未持有本公司股份。",
    "与其他董事不存在关联关系。",
)
ZH_MEDICAL_TEMPLATES = (
    "患者因{sym}三天入院。",
    "患儿{sym}伴{sym}，诊断为{dis}。",
    "{dis}患者常出现{sym}。",
    "给予{dru}口服后，{sym}明显缓解。",
    "{dru}可用于治疗{dis}。",
    "查体：{bod}未见明显异常。",
    "{dis}的主要表现为{sym}和{sym}。",
    "建议{dis}患者避免使用{dru}。",
    "{bod}CT检查未见异常。",
    "长期服用{dru}可能引起{sym}。",
    "该患者既往有{dis}病史。",
    "{sym}是{dis}的常见症状。",
)
ZH_MEDICAL_EMPTY_TEMPLATES = (
    "患者一般情况良好。",
    "请按时复诊。",
    "饮食宜清淡。",
)


# ---------------------------------------------------------------------------
# Sentence model
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """An annotated entity over units [start, end) of a sentence."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Sentence:
    """A generated sentence: tokens (English) or characters (Chinese) and its entities."""

    units: tuple[str, ...]
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Mention:
    """A filled slot: its units and the entity categories it realizes.

    Each facet is (category, start, end) relative to the mention, outermost first,
    so "Mr. John Smith" carries a titled_person facet and a nested person facet.
    """

    units: tuple[str, ...]
    facets: tuple[tuple[str, int, int], ...]


class EntityPools:
    """Gazetteers split into entities seen in training and entities held out for evaluation."""

    def __init__(self, rng: random.Random) -> None:
        self._seen: dict[str, list[str]] = {}
        self._held_out: dict[str, list[str]] = {}
        for name in sorted(GAZETTEERS):
            entries = sorted(GAZETTEERS[name])
            rng.shuffle(entries)
            held_out_count = max(1, round(len(entries) * HELD_OUT_FRACTION))
            self._held_out[name] = entries[:held_out_count]
            self._seen[name] = entries[held_out_count:]

    def draw(self, gazetteer: str, split: str, rng: random.Random) -> str:
        """Return one entry; only non-train splits may return held-out entries."""
        if split != "train" and rng.random() < UNSEEN_DRAW_PROBABILITY:
            return rng.choice(self._held_out[gazetteer])
        return rng.choice(self._seen[gazetteer])


Filler = Callable[[EntityPools, str, random.Random], Mention]


def _split_units(text: str, lang: str) -> tuple[str, ...]:
    """Tokens for English (single-space separated), characters for Chinese."""
    return tuple(text.split(" ")) if lang == "en" else tuple(text)


def _gazetteer_slot(gazetteer: str, category: str, lang: str) -> Filler:
    """Filler drawing one gazetteer entry that realizes a single category."""

    def fill(pools: EntityPools, split: str, rng: random.Random) -> Mention:
        units = _split_units(pools.draw(gazetteer, split, rng), lang)
        return Mention(units, ((category, 0, len(units)),))

    return fill


def _compound_slot(
    plain: Filler,
    inner_gazetteer: str,
    inner_category: str,
    affixes: Sequence[str],
    outer_category: str,
    affix_first: bool,
    probability: float,
    lang: str,
) -> Filler:
    """Filler that sometimes joins an inner entity with an affix into a longer outer mention.

    The inner entity stays a facet nested in the outer one ("IL-2" in "IL-2 gene",
    "腹部" in "腹部疼痛", "John Smith" in "Mr. John Smith"); otherwise `plain` fills.
    """

    def fill(pools: EntityPools, split: str, rng: random.Random) -> Mention:
        if rng.random() >= probability:
            return plain(pools, split, rng)
        inner = _split_units(pools.draw(inner_gazetteer, split, rng), lang)
        affix = _split_units(rng.choice(affixes), lang)
        inner_start = len(affix) if affix_first else 0
        units = affix + inner if affix_first else inner + affix
        facets = (
            (outer_category, 0, len(units)),
            (inner_category, inner_start, inner_start + len(inner)),
        )
        return Mention(units, facets)

    return fill


EN_SLOTS: dict[str, Filler] = {
    "person": _compound_slot(
        _gazetteer_slot("en_person", "person", "en"),
        "en_person",
        "person",
        EN_PERSON_TITLES,
        "titled_person",
        affix_first=True,
        probability=TITLED_PERSON_PROBABILITY,
        lang="en",
    ),
    "nominal": _gazetteer_slot("en_nominal_person", "nominal_person", "en"),
    "org": _gazetteer_slot("en_organization", "organization", "en"),
    "gpe": _gazetteer_slot("en_geopolitical", "geopolitical", "en"),
    "loc": _gazetteer_slot("en_location", "location", "en"),
    "nationality": _gazetteer_slot("en_nationality", "miscellaneous", "en"),
    "event": _gazetteer_slot("en_event", "miscellaneous", "en"),
    "protein": _gazetteer_slot("en_protein", "protein", "en"),
    "dna": _compound_slot(
        _gazetteer_slot("en_dna_element", "dna", "en"),
        "en_protein",
        "protein",
        EN_DNA_SUFFIXES,
        "dna",
        affix_first=False,
        probability=NESTED_COMPOUND_PROBABILITY,
        lang="en",
    ),
    "cell": _gazetteer_slot("en_cell_type", "cell_type", "en"),
}
ZH_SLOTS: dict[str, Filler] = {
    "name": _gazetteer_slot("zh_person", "person", "zh"),
    "nominal": _gazetteer_slot("zh_nominal_person", "nominal_person", "zh"),
    "company": _gazetteer_slot("zh_company", "company", "zh"),
    "government": _gazetteer_slot("zh_government", "government", "zh"),
    "organization": _gazetteer_slot("zh_organization", "organization", "zh"),
    "gpe": _gazetteer_slot("zh_geopolitical", "geopolitical", "zh"),
    "loc": _gazetteer_slot("zh_location", "location", "zh"),
    "title": _gazetteer_slot("zh_job_title", "job_title", "zh"),
    "edu": _gazetteer_slot("zh_education", "education", "zh"),
    "dis": _gazetteer_slot("zh_disease", "disease", "zh"),
    "bod": _gazetteer_slot("zh_body_part", "body_part", "zh"),
    "sym": _compound_slot(
        _gazetteer_slot("zh_symptom", "symptom", "zh"),
        "zh_body_part",
        "body_part",
        ZH_SYMPTOM_SUFFIXES,
        "symptom",
        affix_first=False,
        probability=NESTED_COMPOUND_PROBABILITY,
        lang="zh",
    ),
    "dru": _gazetteer_slot("zh_drug", "drug", "zh"),
}
SLOTS_BY_LANGUAGE = {"en": EN_SLOTS, "zh": ZH_SLOTS}
_SLOT_PATTERN = re.compile(r"\{(\w+)\}")


# ---------------------------------------------------------------------------
# Dataset specifications
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """One demo dataset: what it annotates, how it is written and how big it is.

    `labels` maps mention categories to this dataset's label; categories it does not
    list stay unannotated, which is how scope, coverage and nominal conflicts arise.
    `format`, `format_options` and `files` mirror the dataset's catalog YAML
    (tasks/catalog/datasets/<name>.yaml, which also holds title, domain and notes);
    `layout` holds the format writer's layout keywords (tasks/formats/<format>.py).
    """

    name: str
    lang: str
    format: str
    format_options: dict[str, object]
    split_sizes: dict[str, int]
    templates: tuple[str, ...]
    empty_templates: tuple[str, ...]
    labels: dict[str, str]
    nested: bool = False
    layout: dict[str, object] = field(default_factory=dict)

    @property
    def format_spec(self) -> FormatSpec:
        """How the dataset's files are written and read back."""
        return FormatSpec(self.format, self.lang, **self.format_options)

    @property
    def files(self) -> dict[str, str]:
        """File name of each split, named like the real datasets of the same format."""
        extension = ".txt" if self.format == "conll" else ".json"
        return {split: split + extension for split in self.split_sizes}


DATASETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="demo_news_en",
        lang="en",
        format="conll",
        format_options={"sep": "tab", "scheme": "bio"},
        split_sizes={"train": 700, "dev": 180, "test": 180},
        templates=EN_GENERAL_TEMPLATES,
        empty_templates=EN_GENERAL_EMPTY_TEMPLATES,
        # CoNLL scope: cities and countries are LOC; titles and nominal persons stay untagged.
        labels={
            "person": "PER",
            "organization": "ORG",
            "geopolitical": "LOC",
            "location": "LOC",
            "miscellaneous": "MISC",
        },
        layout={"docstart": True},
    ),
    DatasetSpec(
        name="demo_wiki_en",
        lang="en",
        format="b2nerd",
        format_options={},
        split_sizes={"train": 600, "test": 180},
        templates=EN_GENERAL_TEMPLATES,
        empty_templates=EN_GENERAL_EMPTY_TEMPLATES,
        # OntoNotes scope: cities and countries are GPE; MISC-like mentions stay untagged.
        labels={
            "person": "person",
            "organization": "organization",
            "geopolitical": "GPE",
            "location": "location",
        },
    ),
    DatasetSpec(
        name="demo_social_en",
        lang="en",
        format="conll",
        format_options={"sep": "tab", "scheme": "bioes"},
        split_sizes={"train": 500, "test": 150},
        templates=EN_SOCIAL_TEMPLATES + EN_GENERAL_TEMPLATES,
        empty_templates=EN_SOCIAL_EMPTY_TEMPLATES + EN_GENERAL_EMPTY_TEMPLATES,
        # Flat output keeps the outermost facet, so the whole "Mr. John Smith" is PER.
        labels={
            "titled_person": "PER",
            "person": "PER",
            "nominal_person": "PER",
            "organization": "ORG",
            "geopolitical": "LOC",
            "location": "LOC",
        },
    ),
    DatasetSpec(
        name="demo_bio_en",
        lang="en",
        format="genia",
        format_options={},
        split_sizes={"train": 500, "test": 150},
        templates=EN_BIOMEDICAL_TEMPLATES,
        empty_templates=EN_BIOMEDICAL_EMPTY_TEMPLATES,
        labels={"protein": "protein", "dna": "DNA", "cell_type": "cell_type"},
        nested=True,
    ),
    DatasetSpec(
        name="demo_news_zh",
        lang="zh",
        format="cluener",
        format_options={},
        split_sizes={"train": 700, "dev": 180, "test": 180},
        templates=ZH_GENERAL_TEMPLATES,
        empty_templates=ZH_GENERAL_EMPTY_TEMPLATES,
        # Fine organization types; address covers both GPEs and natural places.
        labels={
            "person": "name",
            "company": "company",
            "government": "government",
            "organization": "organization",
            "geopolitical": "address",
            "location": "address",
        },
        layout={"sort_labels": True},
    ),
    DatasetSpec(
        name="demo_weibo_zh",
        lang="zh",
        format="conll",
        format_options={"sep": "tab", "scheme": "bio", "segment_digit": True},
        split_sizes={"train": 500, "test": 150},
        templates=ZH_WEIBO_TEMPLATES + ZH_GENERAL_TEMPLATES,
        empty_templates=ZH_WEIBO_EMPTY_TEMPLATES + ZH_GENERAL_EMPTY_TEMPLATES,
        # One coarse ORG.NAM; GPE.NAM and LOC.NAM split what demo_news_zh calls address.
        labels={
            "person": "PER.NAM",
            "nominal_person": "PER.NOM",
            "company": "ORG.NAM",
            "government": "ORG.NAM",
            "organization": "ORG.NAM",
            "geopolitical": "GPE.NAM",
            "location": "LOC.NAM",
        },
    ),
    DatasetSpec(
        name="demo_med_zh",
        lang="zh",
        format="cmeee",
        format_options={},
        split_sizes={"train": 500, "test": 150},
        templates=ZH_MEDICAL_TEMPLATES,
        empty_templates=ZH_MEDICAL_EMPTY_TEMPLATES,
        labels={"disease": "dis", "symptom": "sym", "body_part": "bod", "drug": "dru"},
        nested=True,
        layout={"final_newline": False},  # as the real CMeEE file
    ),
    DatasetSpec(
        name="demo_resume_zh",
        lang="zh",
        format="conll",
        format_options={"sep": "space", "scheme": "bmes"},
        split_sizes={"train": 400, "test": 150},
        templates=ZH_RESUME_TEMPLATES,
        empty_templates=ZH_RESUME_EMPTY_TEMPLATES,
        labels={
            "person": "NAME",
            "company": "ORG",
            "government": "ORG",
            "organization": "ORG",
            "job_title": "TITLE",
            "education": "EDU",
        },
    ),
)


# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


def _template_pieces(template: str, lang: str) -> list[str]:
    """English: tokens; Chinese: literal runs and "{slot}" pieces."""
    if lang == "en":
        return template.split(" ")
    return [piece for piece in re.split(r"(\{\w+\})", template) if piece]


def _generate_sentence(spec: DatasetSpec, split: str, pools: EntityPools, rng: random.Random) -> Sentence:
    """Fill one template and annotate its mentions by the dataset's label policy."""
    use_empty = rng.random() < EMPTY_SENTENCE_PROBABILITY
    template = rng.choice(spec.empty_templates if use_empty else spec.templates)
    slots = SLOTS_BY_LANGUAGE[spec.lang]
    units: list[str] = []
    spans: list[Span] = []
    for piece in _template_pieces(template, spec.lang):
        slot = _SLOT_PATTERN.fullmatch(piece)
        if slot is None:
            units.extend(_split_units(piece, spec.lang))
            continue
        mention = slots[slot.group(1)](pools, split, rng)
        annotated = [
            Span(len(units) + start, len(units) + end, spec.labels[category])
            for category, start, end in mention.facets
            if category in spec.labels
        ]
        # Flat formats cannot nest, so they keep the outermost annotated facet.
        spans.extend(annotated if spec.nested else annotated[:1])
        units.extend(mention.units)
    ordered = sorted(spans, key=lambda span: (span.start, -span.end, span.label))
    return Sentence(tuple(units), tuple(ordered))


# ---------------------------------------------------------------------------
# Canonical samples, written by each format's writer (tasks/formats)
# ---------------------------------------------------------------------------


def _segment_positions(sentence: Sentence) -> list[int]:
    """Position of each character inside its word, the Weibo NER segment digit.

    Entities are single words, punctuation stands alone and other text is cut into
    two-character words: a plausible segmentation that never crosses an entity boundary.
    """
    entity_end_at = {span.start: span.end for span in sentence.spans}
    positions: list[int] = []
    index = 0
    while index < len(sentence.units):
        if index in entity_end_at:
            length = entity_end_at[index] - index
        else:
            next_index = index + 1
            pair_breaks = (
                sentence.units[index] in ZH_PUNCTUATION
                or next_index == len(sentence.units)
                or next_index in entity_end_at
                or sentence.units[next_index] in ZH_PUNCTUATION
            )
            length = 1 if pair_breaks else 2
        positions.extend(range(length))
        index += length
    return positions


def _text_and_offsets(sentence: Sentence, lang: str) -> tuple[str, list[int]]:
    """Surface text (English tokens joined by single spaces) and each unit's character start."""
    joiner = " " if lang == "en" else ""
    starts: list[int] = []
    position = 0
    for unit in sentence.units:
        starts.append(position)
        position += len(unit) + len(joiner)
    return joiner.join(sentence.units), starts


def _character_span(span: Span, starts: list[int], sentence: Sentence) -> tuple[int, int]:
    """Character [start, end) of a unit span."""
    last_unit = span.end - 1
    return starts[span.start], starts[last_unit] + len(sentence.units[last_unit])


def _samples(sentences: list[Sentence], spec: DatasetSpec) -> pl.DataFrame:
    """The sentences as canonical samples, entities in span order; with Weibo's segment digit, a
    ``segments`` column (each character's position in its word)."""
    texts, entities = [], []
    for sentence in sentences:
        text, starts = _text_and_offsets(sentence, spec.lang)
        spans = [(span, *_character_span(span, starts, sentence)) for span in sentence.spans]
        texts.append(text)
        entities.append([{"start": a, "end": b, "label": span.label, "mention": text[a:b]} for span, a, b in spans])
    samples = pl.DataFrame({"text": texts, "entities": entities}, schema={"text": pl.String, "entities": ENTITY_DTYPE})
    if spec.format_options.get("segment_digit"):
        return samples.with_columns(segments=pl.Series([_segment_positions(s) for s in sentences]))
    return samples


def split_size(base_size: int, scale: float) -> int:
    """Number of sentences of a split at a given scale (at least one)."""
    return max(1, round(base_size * scale))


def write_demo_corpus(out_dir: Path, seed: int = 0, scale: float = 1.0) -> dict[str, dict[str, int]]:
    """Write every demo dataset under `out_dir/<dataset>/<split file>`.

    The same seed and scale always give byte-identical files. `scale` multiplies every
    split size (1.0: 400-700 train and 150-180 test sentences per dataset).
    Returns {dataset: {split: number of sentences written}}.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    pools = EntityPools(random.Random(f"{seed}:gazetteers"))
    counts: dict[str, dict[str, int]] = {}
    for spec in DATASETS:
        dataset_dir = Path(out_dir) / spec.name
        dataset_dir.mkdir(parents=True, exist_ok=True)
        counts[spec.name] = {}
        for split, base_size in spec.split_sizes.items():
            # One generator per dataset and split, so resizing one never changes another.
            rng = random.Random(f"{seed}:{spec.name}:{split}")
            size = split_size(base_size, scale)
            sentences = [_generate_sentence(spec, split, pools, rng) for _ in range(size)]
            write = registry()[spec.format].write
            write(_samples(sentences, spec), dataset_dir / spec.files[split], spec.format_spec, **spec.layout)
            counts[spec.name][split] = len(sentences)
    return counts


def main(argv: list[str] | None = None) -> None:
    """Command line entry point: write the demo corpus and print one line per dataset."""
    parser = argparse.ArgumentParser(description="Generate the embedded bilingual demo NER corpus.")
    parser.add_argument("--out", type=Path, default=Path("data/raw/demo"), help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of every split size")
    args = parser.parse_args(argv)
    counts = write_demo_corpus(args.out, seed=args.seed, scale=args.scale)
    formats = {spec.name: spec.format for spec in DATASETS}
    for name, split_counts in counts.items():
        sizes = " ".join(f"{split}={count}" for split, count in split_counts.items())
        print(f"{name}\t{formats[name]}\t{sizes}")


if __name__ == "__main__":
    main()
