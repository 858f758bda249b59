"""Quality of the bundled topic and country presets.

The release bar (issue 4): F1 >= 0.9 per topic and per country on articles the
presets were not tuned against, i.e. `tests/data/labeled/holdout.jsonl`
(written before any tuning; see docs/presets.md). The table of hard cases
below pins the distinctions each preset exists to make.
"""
from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from services.countries import CODES
from services.rules import Document, Matcher, default_presets, evaluate, parse

ROOT = Path(__file__).resolve().parents[3]
LABELED = ROOT / "tests" / "data" / "labeled"
TOPICS = ("tariffs", "pipeline-disruption", "fx", "sanctions")
REFS = [f"topic:{t}" for t in TOPICS] + [f"country:{c}" for c in CODES]
RELEASE_F1 = 0.9


def _load_eval():
    spec = importlib.util.spec_from_file_location("presets_eval", ROOT / "benchmarks" / "presets_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("presets_eval", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


presets_eval = _load_eval()


def _items(split: str) -> list[dict]:
    return presets_eval.load_items(LABELED / f"{split}.jsonl")


@pytest.fixture(scope="module")
def holdout_scores():
    return presets_eval.score(default_presets(), _items("holdout"))


# -- the labeled set itself -------------------------------------------------
def test_labeled_set_is_well_formed():
    tune, holdout = _items("tune"), _items("holdout")
    every = tune + holdout
    assert len(every) >= 200
    ids = [i["id"] for i in every]
    assert len(ids) == len(set(ids)), "ids are unique across both splits"
    titles = [i["title"].casefold() for i in every]
    assert len(titles) == len(set(titles)), "no item is in both splits (or twice)"
    for item in every + _items("challenge"):
        assert item["lang"] in ("en", "ru"), item["id"]
        assert item["title"].strip() and item["summary"].strip(), item["id"]
        assert set(item["labels"]) <= set(REFS), item["id"]
    assert 0.25 <= len(holdout) / len(every) <= 0.45, "holdout share"
    ru = sum(1 for i in every if i["lang"] == "ru")
    assert ru / len(every) >= 0.2
    counts = Counter(label for i in every for label in i["labels"])
    for ref in REFS:
        assert counts[ref] >= 15, f"{ref}: only {counts[ref]} positives"
    assert sum(1 for i in every if len(i["labels"]) >= 2) >= 30, "multi-label items"
    assert sum(1 for i in every if not any(l.startswith("topic:") for l in i["labels"])) >= 60


# -- the release bar ----------------------------------------------------------
@pytest.mark.parametrize("ref", REFS)
def test_holdout_f1_meets_release_bar(holdout_scores, ref):
    s = holdout_scores[ref]
    assert s.support >= 10, f"{ref}: too few holdout positives to measure"
    assert s.f1 >= RELEASE_F1, (
        f"{ref}: F1 {s.f1:.3f} (P {s.precision:.3f}, R {s.recall:.3f}); "
        f"false positives {s.false_pos}, false negatives {s.false_neg}")


# blind-check22 carries all four languages: the blind floors below are read with the
# Matcher (what the service runs, and ~10x faster than the reference evaluator).
@pytest.mark.parametrize("split", ["tune", "holdout", "blind-check22"])
def test_indexed_matcher_agrees_with_reference_on_labeled_set(split):
    items = presets_eval.load_split(LABELED, split)
    presets = default_presets()
    assert presets_eval.predict(presets, items, "matcher") == presets_eval.predict(presets, items, "reference")


# -- hard cases: (rule, title, summary, should match) --------------------------
CASES = [
    # tariffs: trade duties yes; utility, telecom, transport and taxi tariffs no
    ("topic:tariffs", "Astana doubles customs duty on imported tiles", "Builders expect higher prices.", True),
    ("topic:tariffs", "Bishkek retaliates with tariffs on Kazakh potatoes", "", True),
    ("topic:tariffs", "Россия повысила пошлину на вывоз пшеницы", "Казахстанские мельники ждут роста спроса.", True),
    ("topic:tariffs", "Uzbekistan protests Russian anti-dumping measures on its glass", "", True),
    ("topic:tariffs", "Heating tariffs in Pavlodar to rise 15%", "The regional utility cited coal costs.", False),
    ("topic:tariffs", "Beeline Kyrgyzstan cuts mobile tariffs", "Subscribers get more data for less.", False),
    ("topic:tariffs", "Тарифы на электроэнергию в Душанбе выросли", "Коммунальные платежи растут третий год.", False),
    ("topic:tariffs", "Такси в Бишкеке: новые тарифы с понедельника", "", False),
    ("topic:tariffs", "Duty-free zone opens at Tashkent airport", "", False),
    ("topic:tariffs", "Tajik soldiers on duty at the border", "", False),
    ("topic:tariffs", "China Export-Import Bank lends $300m to Uzbekistan", "The loan will fund a new power line.", False),
    ("topic:tariffs", "Russia bans imports of Kyrgyz milk", "", True),
    ("topic:tariffs", "Tenge weakness feeding into import prices", "", False),
    # pipeline disruption: physical stops and damage yes; plans and business senses no
    ("topic:pipeline-disruption", "CPC loadings suspended at SPM-3", "Waves damaged a hose at the mooring.", True),
    ("topic:pipeline-disruption", "Drones strike pumping station on CPC route", "", True),
    ("topic:pipeline-disruption", "Газопровод Бухара — Урал поврежден", "Подача газа приостановлена.", True),
    ("topic:pipeline-disruption", "Atasu pumping halted after power failure", "Oil pipeline flows to China stopped.", True),
    ("topic:pipeline-disruption", "Kazakhstan plans gas pipeline to Kokshetau", "Construction starts in 2027.", False),
    ("topic:pipeline-disruption", "Kaspi's sales pipeline shrinks", "The fintech cut its forecast after weaker demand.", False),
    ("topic:pipeline-disruption", "Talent pipeline dries up as IT graduates leave", "Firms in Tashkent report a halt in hiring.", False),
    ("topic:pipeline-disruption", "Fog halts flights at Almaty airport", "", False),
    # fx
    ("topic:fx", "Tenge strengthens to 470 per dollar", "", True),
    ("topic:fx", "National Bank of Kazakhstan intervenes to support the tenge", "", True),
    ("topic:fx", "Курс тенге к доллару вырос", "", True),
    ("topic:fx", "Сомони девальвирован на 3%", "Национальный банк Таджикистана понизил официальный курс.", True),
    ("topic:fx", "Turkmenistan keeps manat pegged at 3.5", "", True),
    ("topic:fx", "Price of bread rises to 200 tenge", "", False),
    ("topic:fx", "Рыбаки поймали сома в Иссык-Куле", "", False),
    ("topic:fx", "Students start exchange programme in Bishkek", "", False),
    ("topic:fx", "Kazakhstan raises its base rate to 17%", "", False),
    # sanctions
    ("topic:sanctions", "US Treasury sanctions Kyrgyz exchange", "", True),
    ("topic:sanctions", "Kazakhstan tightens export controls on drones", "", True),
    ("topic:sanctions", "Казахстанские банки опасаются вторичных санкций", "", True),
    ("topic:sanctions", "Uzbek lender added to EU sanctions list", "", True),
    ("topic:sanctions", "US sanctions two Kyrgyz banks", "", True),  # "us" must stay a context word
    ("topic:sanctions", "Malaysian insurer Sdn Bhd sanctioned the sale", "", False),
    ("topic:sanctions", "Parliament sanctions new road programme", "The funding was approved for five years.", False),
    ("topic:sanctions", "AFC sanctions Tajik club for crowd trouble", "The club was fined and must play behind closed doors.", False),
    ("topic:sanctions", "Санкции за нарушение тишины ужесточат в Астане", "Штрафы вырастут вдвое.", False),
    # countries: names, cities, demonyms, institutions, Russian inflection; and look-alikes
    ("country:KZ", "Казахстанский экспорт вырос", "", True),
    ("country:KZ", "В Астане открыли мост", "", True),
    ("country:KZ", "Mazhilis backs pension reform", "", True),
    ("country:KZ", "Kazan hosts chess tournament", "", False),
    ("country:KZ", "Kazakh eagle hunters in Mongolia", "", False),
    ("country:KG", "Жогорку Кенеш одобрил бюджет", "", True),
    ("country:KG", "В Оше прошел фестиваль", "", True),
    ("country:KG", "Kyrgyz som steadies", "", True),
    ("country:KG", "Рыбак поймал сома весом 40 кг", "", False),
    ("country:KG", "Exports of 500 kgs of tea to India", "", False),
    ("country:UZ", "Oliy Majlis passes education law", "", True),
    ("country:UZ", "В Ташкенте открыли метро", "", True),
    ("country:UZ", "Бухарест принял саммит", "", False),
    ("country:UZ", "Ethnic Uzbek militia commander killed in Afghanistan", "", False),
    ("country:UZ", "Water talks on the Fergana Valley between Bishkek and Dushanbe", "", False),
    ("country:UZ", "Улица Навои в Алматы закрыта на ремонт", "", False),
    ("country:KG", "Взрыв в Джалалабаде на востоке Афганистана", "", False),
    ("country:KG", "В Джалал-Абаде открыли школу", "", True),
    ("topic:tariffs", "Торгово-спортивный центр открылся в Бишкеке", "", False),
    ("country:TJ", "Majlisi Oli approves budget", "", True),
    ("country:TJ", "Душанбе и Худжанд свяжет новая трасса", "", True),
    ("country:TJ", "Taliban appoint ethnic Tajik minister", "", False),
    ("country:TM", "Mejlis of Turkmenistan meets", "", True),
    ("country:TM", "Ашхабад принимает форум", "", True),
    ("country:TM", "Azerbaijani manat holds steady in Baku", "", False),
    ("country:TM", "Iraqi Turkmen front wins seats in Kirkuk", "", False),
    ("country:TM", "Crimean Tatar Mejlis holds congress", "", False),
    # Uzbek (Latin with every apostrophe variant, and Cyrillic) and Kazakh: the same distinctions
    ("topic:tariffs", "Oʻzbekiston avtomobillar importiga bojxona boji stavkasini oshirdi", "", True),
    ("topic:tariffs", "Qozog'iston o'zbek kartoshkasi importiga taqiq joriy etdi", "", True),
    ("topic:tariffs", "Toshkentda taksi tariflari oshdi", "Yandex Go minimal buyurtma narxini oshirdi.", False),
    ("topic:tariffs", "Chegarada bojxonachilar geroin ushlab qoldi", "", False),
    ("topic:tariffs", "Қазақстан импорттық көліктерге кеден бажын көтерді", "", True),
    ("topic:tariffs", "Астанада автобус тарифі көтерілді", "Жол ақысы 150 теңге болады.", False),
    ("topic:tariffs", "Неке тіркеу үшін мемлекеттік баж мөлшері өзгереді", "", False),
    ("topic:tariffs", "Казахстан продлил запрет на вывоз топлива", "", True),
    ("topic:tariffs", "Госпошлину за паспорт снизят", "Государственная пошлина уменьшится вдвое.", False),
    ("topic:tariffs", "КТЖ индексирует тарифы на грузовые перевозки", "", False),
    ("topic:tariffs", "Kazakhstan bans live cattle and sheep exports", "", True),
    ("topic:tariffs", "Uzbek Railways raises transit tariffs for freight", "", False),
    ("topic:tariffs", "Osh doctors to receive extra pay for night duty", "", False),
    ("topic:pipeline-disruption", "Neft quvurida oqish: haydash to'xtatildi", "", True),
    ("topic:pipeline-disruption", "Gaz quvurida portlash", "Gaz uzatish toʻxtatildi.", True),
    ("topic:pipeline-disruption", "Neft quvurida avariya bo'yicha o'quv mashqlari", "Oqish holati simulyatsiya qilindi.", False),
    ("topic:pipeline-disruption", "KTK: neft yuklash to‘xtatilmadi", "Kaspiy quvur konsorsiumi terminali odatdagi rejimda ishlamoqda.", False),
    ("topic:pipeline-disruption", "Toshkentda issiqlik quvuri yorildi", "Uylar issiq suvsiz qoldi.", False),
    ("topic:pipeline-disruption", "Мұнай құбырында ағып кету анықталды, айдау тоқтатылды", "", True),
    ("topic:pipeline-disruption", "Өскеменде жылу магистралі жарылды", "Құбыр жөнделуде.", False),
    ("topic:pipeline-disruption", "Зауытта өрт шықты", "Құбыр арқылы мұнай жеткізу тоқтаған жоқ.", False),
    ("topic:pipeline-disruption", "КТК: прокачка идет в штатном режиме", "Отгрузка нефти на терминале не прерывалась.", False),
    ("topic:pipeline-disruption", "KazTransOil drill simulates leak on main oil pipeline", "", False),
    ("topic:fx", "Markaziy bank: dollar kursi 12 700 soʻmdan oshdi", "", True),
    ("topic:fx", "Dollar kursi 12 700 so'mdan oshdi", "", True),
    ("topic:fx", "Теңге бір аптада 2 пайызға құнсызданды", "", True),
    ("topic:fx", "Пәтер бағасы 600 мың теңгеден асты", "Баспана бір жылда қымбаттаған.", False),
    ("topic:fx", "Қапшағайда 60 келі сом балық ауланды", "", False),
    ("topic:fx", "Министр: девальвации дипломов больше не будет", "", False),
    ("topic:sanctions", "AQSh Moliya vazirligi Toshkentdagi firmaning aktivlarini muzlatdi", "", True),
    ("topic:sanctions", "Суд санкцияси билан фирибгар қамоққа олинди", "", False),
    ("topic:sanctions", "FIFA federatsiyaga intizomiy sanksiya qo'lladi", "", False),
    ("topic:sanctions", "Ұлыбритания Душанбедегі екі компанияның активтерін мұздатты", "", True),
    ("topic:sanctions", "Тергеу судьясы қамауға алуға санкция берді", "", False),
    ("topic:sanctions", "Лондон заморозил активы ташкентского поставщика", "", True),
    ("topic:sanctions", "Суд санкционировал арест бизнесмена", "", False),
    ("topic:sanctions", "UK freezes assets of Tashkent trading house over drone parts", "", True),
    ("topic:sanctions", "Prosecutor sanctions search of Khujand businessman's home", "", False),
    ("country:UZ", "O'zbekiston eksporti o'sdi", "", True),
    ("country:UZ", "O‘zbekiston eksporti o‘sdi", "", True),
    ("country:UZ", "Oʻzbekiston eksporti oʻsdi", "", True),
    ("country:UZ", "Ўзбекистон экспорти ўсди", "", True),
    ("country:UZ", "Өзбекстан экспорты өсті", "", True),
    ("country:UZ", "Afg'onistonning Balx viloyatidagi o'zbeklar uchun maktab", "", False),
    ("country:UZ", "Rossiyaga qarshi yangi sanksiyalar e'lon qilindi", "", False),
    ("country:UZ", "Farg'ona vodiysida suv muammosi", "", False),
    ("country:KZ", "Qozog‘iston neft eksportini oshirdi", "", True),
    ("country:KZ", "Қазақстан астық экспорты өсті", "", True),
    ("country:KZ", "Татарстан астанасында жарыс басталды", "", False),
    ("country:KZ", "Моңғолиядағы қазақтар Наурыз тойлады", "", False),
    ("country:KZ", "Пошлину снизят для многодетных семей", "", False),
    ("country:KG", "Qirg'iziston Milliy banki valyuta sotdi", "", True),
    ("country:KG", "Өзбек сомы долларға қатысты нығайды", "Бір доллар 12 600 сом.", False),
    ("country:TJ", "Тәжікстан Ұлттық банкі", "", True),
    ("country:TJ", "Ауғанстандағы тәжіктер мерекені атап өтті", "", False),
    ("country:TM", "Turkmaniston gaz eksporti", "", True),
    ("country:TM", "Eronning Golestan ostonidagi turkmanlar festival o‘tkazdi", "", False),
    ("country:KZ", "Leaders of the five Central Asian states meet in Tashkent", "", True),
    # issue 11: word senses, paraphrases, places; one spelling for every apostrophe form
    ("topic:tariffs", "Conscripts in Osh begin military duty", "The defence ministry called up 4,000 young men.", False),
    ("topic:tariffs", "Duty officers at Dostyk station work double shifts", "", False),
    ("topic:tariffs", "Uzbekistan sets a 10% duty on poultry", "The measure covers imported chicken legs.", True),
    ("topic:tariffs", "KazTransOil raises its transit tariff", "The pumping tariff for Russian oil rises 7%.", False),
    ("topic:tariffs", "Тариф на транзит газа через Узбекистан вырос", "", False),
    ("topic:tariffs", "Pomidor eksportiga taqiq joriy etildi", "", True),
    ("topic:tariffs", "Toshkentda chekishga taqiq kuchaydi", "Import qilingan sigaretlar narxi esa o'zgarmadi, deydi sotuvchilar bozorda.", False),
    ("topic:pipeline-disruption", "Heating main bursts in Almaty", "The pipeline rupture left 40 buildings without hot water.", False),
    ("topic:pipeline-disruption", "В Караганде прорвало теплотрассу", "Повреждение трубопровода оставило дома без отопления.", False),
    ("topic:pipeline-disruption", "Gas pipeline rupture cuts heating in Shymkent", "", True),
    ("topic:pipeline-disruption", "KazMunayGas unit hit by cyberattack", "Oil flows through its pipelines were unaffected.", False),
    ("topic:pipeline-disruption", "Drone hits pumping station on CPC route", "Oil flows were not affected, the operator said.", True),
    ("topic:fx", "Queues for dollars at Bishkek exchange offices", "Several exchange offices ran out of dollar cash.", True),
    ("topic:fx", "Tajik bank opens exchange offices in malls", "They accept cards and sell dollars.", False),
    ("topic:fx", "Tenge swings after exchange restrictions", "", True),
    ("topic:fx", "So‘m dollarga nisbatan zaiflashdi", "", True),
    ("topic:fx", "Soʻm dollarga nisbatan zaiflashdi", "", True),
    ("topic:sanctions", "US lists three Kazakh firms for supplying Russia's military", "", True),
    ("topic:sanctions", "EU designates two Kyrgyz companies over drone parts supplied to Russia", "", True),
    ("topic:sanctions", "US-listed firms buy more Kazakh uranium", "Supply deals run to 2030.", False),
    ("topic:sanctions", "Toshkentda chekish uchun yangi cheklovlar", "Qoidalar AQSh va Yevropa tajribasi asosida ishlab chiqildi.", False),
    ("country:UZ", "O'zbekiston eksporti o'sdi", "", True),
    ("country:UZ", "O`zbekiston eksporti o`sdi", "", True),
    ("country:KZ", "Floods hit Turkestan region", "", True),
    ("country:KG", "Chuy region farmers expect a record harvest", "", True),
    ("country:TJ", "Sug‘d viloyatida paxta terimi boshlandi", "", True),
    ("country:TM", "Türkmenbaşy port adds a ferry berth", "", True),
    ("country:KG", "O‘sh shahrida yangi bozor ochildi", "", True),
    # round 4 -- tariffs: customs is not "customers"; rail/transit tariffs stay out even when exporters benefit
    ("topic:tariffs", "Water tariff for Shymkent households goes up", "The utility told customers bills rise by 9%.", False),
    ("topic:tariffs", "Railway lowers transit tariffs for grain", "The discount should help exporters ship more wheat via the corridor.", False),
    ("topic:tariffs", "Темір жол жүк тасымалы тарифтерін көтерді", "Экспорттаушылар шығын көбейетінін айтады.", False),
    ("topic:tariffs", "Алматыда автобус жол ақысының тарифі өседі", "Қалалық көлік басқармасы жаңа бағаны жариялады.", False),
    ("topic:tariffs", "Тошкентда чиқинди олиб чиқиш тарифи оширилди", "Аҳолидан ойлик тўлов 12 минг сўмга етди.", False),
    ("topic:tariffs", "Kazakhstan raises customs duty on rail-imported cars", "Transit of cars to Russia is exempt.", True),
    # tariffs: bans and curbs on goods, paraphrased
    ("topic:tariffs", "Dushanbe forbids exports of onions until March", "", True),
    ("topic:tariffs", "Astana extends moratorium on importing diesel by truck", "", True),
    ("topic:tariffs", "Plant watchdog lifts curbs on Kyrgyz cherries", "Rosselkhoznadzor allowed two packers to resume shipments.", True),
    ("topic:tariffs", "Минск снял ограничения на поставки казахстанского зерна", "", True),
    ("topic:tariffs", "Узбекистан поднял утилизационный сбор для ввозимых машин", "", True),
    ("topic:tariffs", "Ограничения на поставки газа в Бишкек", "Газопровод работает с пониженным давлением.", False),
    ("topic:tariffs", "Tashkent says it will not allow re-exports of Western parts", "Customs will stop exports flagged by the EU envoy as circumvention.", False),
    ("topic:tariffs", "Banklar import uchun to'lovlarni to'xtatdi", "Sabab: ikkilamchi sanksiyalar xavfi.", False),
    ("topic:tariffs", "Bishkek introduces a recycling fee for household waste", "", False),
    # pipeline: port loading of oil is an asset; "hit a record" is not a hit; threats and non-events are out
    ("topic:pipeline-disruption", "Gale stops crude loading at Aktau port", "Tankers waited offshore for two days.", True),
    ("topic:pipeline-disruption", "Шторм прервал налив нефти в Туркменбаши", "", True),
    ("topic:pipeline-disruption", "CPC shipments hit record in March", "The terminal loaded 6 million tonnes of crude.", False),
    ("topic:pipeline-disruption", "Terminal keeps loading oil despite drone alert", "Operations continued normally, the operator said.", False),
    ("topic:pipeline-disruption", "Refinery blaze put out; crude deliveries continue", "The pipeline supplying the plant was not interrupted.", False),
    ("topic:pipeline-disruption", "Dauyl gaz eksportına әсер етпеді", "Құбыр арқылы газ жеткізу қалыпты көлемде жалғасуда.", False),
    ("topic:pipeline-disruption", "Bo'ron neft yuklashga ta'sir ko'rsatmadi", "Tankerlarga yuklash jadval bo'yicha davom etmoqda.", False),
    ("topic:pipeline-disruption", "Gaz quvurida avariya bo'yicha o'quv mashg'uloti o'tkazildi", "", False),
    ("topic:pipeline-disruption", "Gaz quvurida sizib chiqish: bosim pasaydi", "", True),
    ("topic:pipeline-disruption", "Пожар на газопроводе в Мангистау", "", True),
    # fx: scarcity, rationing, exchange trading, price-in-currency is not fx
    ("topic:fx", "Osh exchange booths have no dollars to sell", "", True),
    ("topic:fx", "Banks cap dollar sales at $300 a day in Dushanbe", "", True),
    ("topic:fx", "Manat trades at 19 for a dollar on the street market", "", True),
    ("topic:fx", "Turnover on the currency exchange hits a weekly record", "The tenge firmed slightly.", True),
    ("topic:fx", "Теңге күрт құлдырады", "", True),
    ("topic:fx", "Taxi fare in Tashkent rose to 12,000 so'm", "", False),
    ("topic:fx", "Курс массажа в Душанбе подешевел до 900 сомони", "", False),
    ("topic:fx", "Paxta hosili o'tgan mavsumga nisbatan kamaydi", "Eksport 2 milliard dollarga yetdi.", False),
    ("topic:fx", "Валюта биржасида савдо ҳажми ошди", "", True),
    # sanctions: designations, secondary penalties; legal "sanction of an article", EU "ес", history
    ("topic:sanctions", "Washington designated the Bishkek lender", "It had moved payments for a Russian bank.", True),
    ("topic:sanctions", "Almaty bank closes accounts citing secondary penalties risk", "", True),
    ("topic:sanctions", "Brussels listed four firms supplying Russia with machine tools", "", True),
    ("topic:sanctions", "Shares of companies listed on the Astana exchange rose", "US and Russian investors were active.", False),
    ("topic:sanctions", "Жол ережесін бұзғандарға айыппұл екі есе артады", "Кодекс бабының санкциясы қатаңдатылады.", False),
    ("topic:sanctions", "Uzbekistan and the EU open a new chapter", "Sanctions were lifted in 2009; trade has since tripled.", False),
    ("topic:sanctions", "AQSh import tariflari ro'yxati e'lon qilindi", "Vashington O'zbekiston uchun 10% stavka belgiladi.", False),
    ("topic:sanctions", "Savdogar cheklovlarni chetlab o'tishda ayblandi", "", True),
    # countries: regions in Russian, local institutions, ethnic groups vs adjectives
    ("country:KZ", "Паводок в Актюбинской области", "", True),
    ("country:KZ", "Нацфонд передаст в бюджет 2 трлн", "", True),
    ("country:UZ", "Vazirlar Mahkamasi qaror qabul qildi", "Shakar importiga imtiyoz uzaytirildi.", True),
    ("country:UZ", "Davlat bojxona qo'mitasi xodimlari taqdirlandi", "", True),
    ("country:TJ", "Tajik cement plants sell more to Afghanistan", "", True),
    ("country:TJ", "Ethnic Tajiks in Afghanistan's north celebrate Navruz", "", False),
    ("country:UZ", "Афғонистон шимолидаги ўзбеклар байрам қилди", "", False),
    ("country:TM", "Әзербайжан манаты тұрақты", "Орталық банк бағамды ұстап тұр.", False),
    ("country:KG", "Сом подешевел", "Доллар на торгах подорожал до 89 сомов.", True),
    # round 4 -- generic paraphrases and inflation-only news
    ("topic:tariffs", "Uzbekistan scraps duties on 200 food items", "", True),
    ("topic:tariffs", "Russia blocks Kazakh grain at the border over pest findings", "", True),
    ("topic:tariffs", "Astana hikes state duty on passports", "", False),
    # Round 13: goods kept from leaving the country; "ban" is not the start of "banks".
    ("topic:tariffs", "No hay to leave Kyrgyzstan this winter", "The cabinet acted after a dry summer.", True),
    ("topic:tariffs", "Banks finance grain exports", "Kazakh banks lent more to farmers exporting wheat this year.", False),
    ("topic:tariffs", "Kazakhstan and Kyrgyzstan scrap roaming charges", "Mobile users crossing the border pay domestic rates.", False),
    # Round 13: thieves who drill into a pipe are not an emergency drill.
    ("topic:pipeline-disruption", "Thieves drill into oil pipe, pumping stopped", "Crude leaked from an illegal tap.", True),
    ("topic:fx", "Uzbekistan lets the som trade more freely", "", True),
    ("topic:fx", "Inflation in Kazakhstan slows to 8%", "Food prices rose 0.5% in tenge terms.", False),
    ("topic:fx", "Tenge falls as oil prices slide", "", True),
    # Round 14: a State Customs Committee is not a state fee; plural "import to'lovlari" are
    # payments for imports, a singular import to'lov is a levy; "officials" explaining a ban on
    # selling goods abroad do not make it a travel ban.
    ("topic:tariffs", "Давлат божхона қўмитаси: шакар импортига 5 фоизлик бож қайтади", "", True),
    ("topic:tariffs", "So'm arzonlashdi", "Tahlilchilar buni import to'lovlari mavsumi bilan bog'lamoqda.", False),
    ("topic:tariffs", "Xitoy uzumga import to'lovini bekor qildi", "", True),
    ("topic:tariffs", "Kyrgyzstan keeps its coal at home", "A ban on selling coal abroad runs until spring, officials said.", True),
    ("topic:tariffs", "Dushanbe puts a 15% charge on cotton exports", "", True),
    # Round 14: two denials outweigh a named attack; a pipeline's own repairs are not a refinery's.
    ("topic:pipeline-disruption", "CPC loadings not hit by port attack", "Drones struck the port; the terminal was not damaged.", False),
    ("topic:pipeline-disruption", "Gas transit across Kazakhstan to stop for repairs", "", True),
    ("topic:pipeline-disruption", "Neft quvurida ta'mir: haydash to'xtaydi", "Pavlodar zavodi zaxira to'playapti.", True),
    ("topic:pipeline-disruption", "Pavlodar NQZ rejali ta'mirga to'xtadi", "Neft quvuri orqali haydash o'zgarmaydi.", False),
    # Round 14: prices per kilo and counterfeit notes are not currency news; "менял" is also a verb.
    ("topic:fx", "Ashgabat market: onions at 12 manat a kilo", "Prices jumped after the frost.", False),
    ("topic:fx", "Фальшивые доллары пытались сбыть через менял", "", False),
    ("topic:fx", "Как менялась экономика за тридцать лет", "", False),
    ("topic:sanctions", "Exporter's payment held over a Russian port in the papers", "A German bank froze the payment for a month.", True),
    # Round 15: goods that may no longer leave are a barrier, people are not; loads turned back
    # as sanctions evasion stay with sanctions; waste removal is not an export.
    ("topic:tariffs", "Tajik onions may no longer be shipped abroad until spring", "", True),
    ("topic:tariffs", "Migrants may no longer leave without a permit", "", False),
    ("topic:tariffs", "Car carriers bound for Russia turned back at the border",
     "Customs said the papers hid the real destination of the cars.", False),
    ("topic:tariffs", "Вывоз сена из Кыргызстана приостановлен до весны", "", True),
    ("topic:tariffs", "В Бишкеке приостановлен вывоз мусора", "", False),
    ("topic:tariffs", "Customs officers on round-the-clock duty at Torugart", "Lorries queue at the border.", False),
    # Round 15: loadings said to proceed normally outweigh a strike elsewhere in the port.
    ("topic:pipeline-disruption", "CPC: loadings proceeding normally", "A drone hit an office block elsewhere in the port.", False),
    ("topic:fx", "Importers pay 9 tenge more for each dollar", "", True),
    ("topic:fx", "Haydovchilik kurslari 3 million so'm turadi", "", False),
    ("topic:sanctions", "Bishkek bank lands on the US Treasury list", "", True),
    ("topic:sanctions", "Ish haqidan ushlab qolinadigan sanksiyalar ko'paydi", "", False),
    ("country:KZ", "КТК возобновил отгрузки после ремонта причала", "", True),
    # Round 16: a limit on named goods is a barrier, a planting quota is not; cars kept from
    # onward shipment to Russia are sanctions; a dollar getting dearer is not a price in dollars.
    ("topic:tariffs", "Kazakhstan limits imports of eggs from Uzbekistan", "", True),
    ("topic:tariffs", "Farmers loosen planting quotas", "Cotton fields turn into cherry orchards.", False),
    ("topic:tariffs", "На «Дордое» подорожала растаможка контейнера", "", True),
    ("topic:tariffs", "Cars will no longer be cleared for onward shipment to Russia", "", False),
    ("topic:sanctions", "Cars will no longer be cleared for onward shipment to Russia", "", True),
    ("topic:sanctions", "Court freezes ex-akim's assets in embezzlement case", "", False),
    ("topic:fx", "Доллар в банках Ташкента снова дорожает", "", True),
    ("topic:fx", "Растаможка подорожала почти на тысячу долларов", "", False),
    ("topic:fx", "Oil firm's IPO raises 60bn tenge", "Its shares rose 5% on the first day.", False),
    ("topic:fx", "Tenge bir haftada 4 foiz tushdi", "", True),
    ("topic:fx", "Chipta narxi 45 ming tengegacha tushdi", "", False),
    ("topic:pipeline-disruption", "Айдау станциясына дрон тиді",
     "Шикізат көлемі қысқартылды, қалыпты жұмыс қашан қалпына келетіні белгісіз.", True),
    ("topic:pipeline-disruption", "CPC: loadings on schedule despite heavy seas",
     "All three moorings continued to load tankers normally.", False),
    # "Will not be issued" is not "will not be exported" unless it leaves the country.
    ("topic:tariffs", "Ескі үлгідегі банкноттар енді шығарылмайды", "", False),
    ("topic:tariffs", "Астық елден 1 маусымға дейін шығарылмайды", "", True),
    # Round 17: goods freed of a restriction or let back in are trade news, an airline's
    # fare classes are not; a bank dropping payments after a US warning is sanctions, a
    # teacher's disciplinary sanction or bailiffs freezing debtors' accounts are not; a
    # compressor upgrade with flows never interrupted is no disruption.
    ("topic:tariffs", "Ashgabat lets Khorezm flour back in", "The two-year ban on foreign flour has ended.", True),
    ("topic:tariffs", "Yangi tarif: Toshkent-Nukus reyslarida biznes klass", "", False),
    ("topic:tariffs", "Бишкек пожаловался в ЕЭК на барьеры на границе", "Молоко и сыр стоят в очередях на проверку.", True),
    ("topic:tariffs", "Мақтаны сыртқа сатуға квота белгіленді", "", True),
    ("topic:sanctions", "Dushanbe banks drop a Russian card system after a US warning",
     "Washington said foreign banks working with it could be cut off from the dollar.", True),
    ("topic:sanctions", "School head given a disciplinary sanction over a re-sit", "", False),
    ("topic:sanctions", "Sud ijrochilari aliment qarzdorlarining hisoblarini muzlatdi", "", False),
    ("topic:pipeline-disruption", "Compressor station upgraded; flows never interrupted", "", False),
    ("topic:pipeline-disruption", "Шүйде экскаватор газ магистралін зақымдады", "Қаланың бір бөлігі газсыз қалды.", True),
    ("topic:fx", "Rubl so'mga nisbatan bir haftada 6 foiz qimmatladi", "", True),
    ("topic:fx", "Library opens a book exchange point", "Readers swap novels for free.", False),
    # Round 18: "bring in" is a harvest unless a cap follows; a charging station is not a
    # charge on goods; "no interruptions" is no disruption; a memoir's sanctions are history.
    ("topic:tariffs", "Kazakh farmers bring in a record harvest", "Elevators took 25 million tonnes of grain.", False),
    ("topic:tariffs", "Traders may bring in no more than 100,000 tonnes of flour this year", "", True),
    ("topic:tariffs", "Electric cars brought in from China pass 40,000", "Charging stations multiply in the capital.", False),
    ("topic:tariffs", "Beef brought into Uzbekistan will clear customs without any charge", "", True),
    ("topic:pipeline-disruption", "КТК отчитался за январь", "Перебоев с отгрузкой танкеров за месяц не было.", False),
    ("topic:pipeline-disruption", "Condensate line shut after a blast at a valve station", "", True),
    ("topic:fx", "Exchange desks cut their buying rate for the dollar", "", True),
    ("topic:fx", "Toshkent–Dubay aviachiptalari arzonladi", "Narxlar 250 dollargacha tushdi.", False),
    ("topic:sanctions", "Минфин США исключил кыргызский банк из черного списка", "", True),
    ("topic:sanctions", "Рецензия: мемуары дипломата", "Автор вспоминает переговоры и санкции против России.", False),
    ("country:TM", "Түркменстан газ экспортын арттырды", "", True),
    ("country:KG", "В Ошской области начали уборку хлопка", "", True),
    # Round 19: "без остановки" is a phrase (not без next to остановлена); loadings going
    # normally and a profile recalling sanctions are not news of either; exchange offices
    # made to report deals is an exchange regime.
    ("topic:pipeline-disruption", "Разрыв на газопроводе", "Транспортировка остановлена, без газа остались три района.", True),
    ("topic:pipeline-disruption", "Газопровод работал без остановки", "Авария на соседней котельной его не затронула.", False),
    ("topic:pipeline-disruption", "КТК: погрузка танкеров идет штатно, несмотря на шторм", "", False),
    ("topic:fx", "Dushanbe exchange offices must report every deal to the National Bank", "", True),
    ("topic:fx", "National Bank issues a commemorative silver coin", "Its face value is ten som.", False),
    ("topic:sanctions", "Profile: how a Bishkek retailer grew in 20 years",
     "The founder recalls the years of Western sanctions on Russia.", False),
    ("topic:sanctions", "Профильное ведомство США ввело санкции против казахстанского трейдера", "", True),
    ("topic:sanctions", "A high-profile case: US designates an Almaty trader", "", True),
    ("topic:tariffs", "Trucks stuck at the border as a trade dispute over re-export flares", "", True),
    ("country:KG", "Manas aeroporti yangi rekord qayd etdi", "", True),
    ("country:TJ", "Tursunzoda alyuminiy zavodi yangi direktor tayinladi", "", True),
    # Round 20: heavy-duty and dump trucks are vehicles, not duties; a ban on settling in
    # foreign currency is a currency control; Uzbek gas deliveries stopped are a disruption;
    # Kazakh "secondary measures" are sanctions risk; Uralsk is Kazakh, the Ural district is not.
    ("topic:tariffs", "Heavy-duty dump trucks roll off a new line in Kostanay", "", False),
    ("topic:tariffs", "Kazakhstan raises the duty on heavy-duty trucks imported from China", "", True),
    ("topic:fx", "В Туркменистане запретили расчеты в иностранной валюте", "Цены на рынках теперь только в манатах.", True),
    ("topic:pipeline-disruption", "Туркманистондан газ узатиш тўхтади", "Ўлчаш станциясида носозлик юз берди.", True),
    ("topic:fx", "Астана – Ташкент әуе билеттері арзандады", "Билеттер 40 доллардан басталады.", False),
    ("topic:sanctions", "Алматыдағы банк қайталама шаралардан қорқып, аударымдарды тоқтатты", "", True),
    ("country:KZ", "В Уральске открыли новый мост через Урал", "", True),
    ("country:KZ", "Уральский федеральный округ нарастил выпуск стали", "", False),
]


@pytest.mark.parametrize("rule, title, summary, expected", CASES)
def test_hard_case(rule, title, summary, expected):
    got = evaluate(parse(rule), Document(title, summary)) is not None
    assert got == expected, f"{rule} on {title!r}: {'matched' if got else 'missed'}"


def test_hard_cases_agree_with_matcher():
    matcher = Matcher()
    for ref in REFS:
        matcher.add(ref, ref)
    for rule, title, summary, expected in CASES:
        assert (rule in matcher.match(Document(title, summary))) == expected, (rule, title)


# -- the blind sets (written by people who never saw the presets) -------------
# Floors under today's figures (docs/presets.md), so that a preset change that
# loses what the blind sets showed fails here. The frozen sets are measured
# only: a failure names the preset and the figures, never the items.
BLIND_FLOORS = {  # split -> (topic micro F1, country micro F1), per language
    # round 4 (docs/presets.md): tuned on; lowest language today 1.000 (topics) / 0.994 (kk countries)
    "blind-tune": (0.98, 0.98),
    # spent; not re-measured in the issue 11 round, floors as set after its one run
    "blind-holdout": (0.85, 0.95),
    # opened and tuned on in round 4: lowest language today 1.000 (topics) / 0.996 (uz countries)
    "blind-check": (0.98, 0.98),
    # round 4: tuned on; lowest language today 1.000 (topics) / 0.982 (en countries)
    "blind-tune2": (0.98, 0.97),
    # opened and tuned on in round 4: lowest language today 1.000 (topics) / 0.994 (kk countries)
    "blind-check2": (0.98, 0.98),
    # measured once after round 4, then opened for the model's thresholds (round 5):
    # lowest language 0.878 (uz topics) / 0.968 (uz countries) before the model
    "blind-check3": (0.86, 0.96),
    # the same, round 5: lowest language 0.945 (uz topics) / 0.977 (kk countries) with the model
    "blind-check4": (0.93, 0.96),
    # measured once in round 5, then opened and tuned on in round 6: lowest language 0.98 (kk topics) / 0.97 (en countries)
    "blind-check5": (0.96, 0.96),
    # measured once after keyword round 5, then opened and tuned on in round 6: lowest language 0.99 / 0.98 (ru countries)
    "blind-check6": (0.97, 0.96),
    # measured once after round 6, then opened and tuned on in round 7: lowest language 0.97 (ru topics) / 0.99
    "blind-check7": (0.95, 0.97),
    # the same: lowest language 0.98 (kk topics) / 0.98 (en and ru countries)
    "blind-check8": (0.96, 0.96),
    # measured once after round 7, then opened and tuned on in round 8: lowest language 0.97 (uz) / 0.97 (uz countries)
    "blind-check9": (0.95, 0.95),
    # the same: lowest language 0.98 (kk topics) / 0.97 (uz countries)
    "blind-check10": (0.96, 0.95),
    # measured once after round 8, then opened and tuned on in round 9: lowest language 0.99 (kk topics) / 0.98 (ru countries)
    "blind-check11": (0.97, 0.96),
    # the same: lowest language 0.99 (ru and kk topics) / 0.98 (uz countries)
    "blind-check12": (0.97, 0.96),
    # measured once after round 9, then opened and tuned on in round 10: lowest language 1.00 (topics) / 0.99 (en countries)
    "blind-check13": (0.97, 0.97),
    # the same: lowest language 0.98 (uz topics) / 0.99 (kk countries)
    "blind-check14": (0.96, 0.97),
    # measured once after round 10, then opened and tuned on in round 11: lowest language 0.99 (kk topics) / 0.98 (uz countries)
    "blind-check15": (0.97, 0.96),
    # the same: lowest language 0.99 (ru topics) / 0.99 (kk countries)
    "blind-check16": (0.97, 0.97),
    # measured once after round 11, then opened and tuned on in round 12: lowest language 0.98 (ru topics) / 0.97 (en countries)
    "blind-check17": (0.96, 0.95),
    # the same: lowest language 0.98 (kk topics) / 0.99 (kk countries)
    "blind-check18": (0.96, 0.97),
    # measured once after round 12, then opened and tuned on in round 13: lowest language 0.98 (ru topics) / 0.98 (kk countries)
    "blind-check19": (0.96, 0.96),
    # the same: lowest language 0.98 (en topics) / 0.97 (kk countries)
    "blind-check20": (0.96, 0.95),
    # measured once after round 13, then opened and tuned on in round 14: lowest language 0.98 (kk topics) / 0.99 (ru and kk countries)
    "blind-check21": (0.96, 0.97),
    # the same: lowest language 0.99 (topics) / 0.97 (kk countries)
    "blind-check22": (0.96, 0.95),
    # measured once after round 14, then opened and tuned on in round 15: lowest language 1.00 (topics) / 0.98 (uz countries)
    "blind-check23": (0.98, 0.96),
    # the same: lowest language 1.00 (topics) / 0.98 (en and ru countries)
    "blind-check24": (0.98, 0.96),
    # measured once after round 15, then opened and tuned on in round 16: lowest language 0.98 (uz and kk topics) / 0.99
    "blind-check25": (0.96, 0.97),
    # the same: lowest language 0.98 (kk topics) / 0.97 (ru countries)
    "blind-check26": (0.96, 0.95),
    # measured once after round 16, then opened and tuned on in round 17: lowest language 0.99 (topics) / 0.98 (en, ru and uz countries)
    "blind-check27": (0.97, 0.96),
    # the same: lowest language 0.98 (kk topics) / 0.98 (kk countries)
    "blind-check28": (0.96, 0.96),
    # measured once after round 17, then opened and tuned on in round 18: lowest language 1.00 (topics) / 0.98 (uz and kk countries)
    "blind-check29": (0.98, 0.96),
    # the same: lowest language 0.99 (uz topics) / 0.99 (countries)
    "blind-check30": (0.97, 0.97),
    # measured once after round 18, then opened and tuned on in round 19: lowest language 0.99 (ru topics) / 0.98 (uz and kk countries)
    "blind-check31": (0.97, 0.96),
    # the same: lowest language 0.99 (en and kk topics) / 0.98 (en, uz and kk countries)
    "blind-check32": (0.97, 0.96),
    # measured once after round 19, then opened and tuned on in round 20: lowest language 0.99 (en and ru topics) / 0.98 (en and ru countries)
    "blind-check33": (0.97, 0.96),
    # the same: lowest language 0.98 (en topics) / 0.99 (ru countries)
    "blind-check34": (0.96, 0.97),
    # frozen before round 20, measured once before and once after it: lowest language 0.97 (en topics) / 0.99 (en countries)
    "blind-check35": (0.94, 0.96),
    # the same: lowest language 0.92 (kk topics) / 0.97 (en countries)
    "blind-check36": (0.90, 0.95),
}


@pytest.mark.parametrize("split", sorted(BLIND_FLOORS))
@pytest.mark.parametrize("lang", presets_eval.LANGS)
def test_blind_sets_hold_their_floor_in_every_language(split, lang):
    items = [i for i in presets_eval.load_split(LABELED, split) if i["lang"] == lang]
    assert len(items) >= 80, f"{split}/{lang}: {len(items)} items"
    scores = presets_eval.score(default_presets(), items, engine="matcher")
    for kind, floor in zip(("topic", "country"), BLIND_FLOORS[split]):
        s = presets_eval.micro(scores, kind)
        assert s.f1 >= floor, f"{split}/{lang} {kind}s: F1 {s.f1:.3f} (P {s.precision:.3f}, R {s.recall:.3f})"


def test_blind_sets_are_well_formed_and_apart():
    seen_ids, seen_titles = set(), set()
    for split in BLIND_FLOORS:
        items = presets_eval.load_split(LABELED, split)
        assert len(items) >= 400
        assert {i["lang"] for i in items} == set(presets_eval.LANGS)
        for item in items:
            assert set(item["labels"]) <= set(REFS), item["id"]
            # Writers working apart sometimes chose the same headline (12 of
            # 1,200 titles recur, each with its own text: docs/presets.md);
            # the same item twice would be a leak between the sets.
            text = (item["title"].casefold(), item["summary"].casefold())
            assert item["id"] not in seen_ids, item["id"]
            assert text not in seen_titles, item["id"]
            seen_ids.add(item["id"])
            seen_titles.add(text)
        topicless = sum(1 for i in items if not any(l.startswith("topic:") for l in i["labels"]))
        assert topicless / len(items) >= 0.4, f"{split}: hard negatives and country-only items"
