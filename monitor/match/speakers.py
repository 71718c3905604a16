"""Who said it: the speaker of a statement as news is written, in every language we alert in.

One table (``LANGS``) declares, once per language, the words the constructions are made of:
speech verbs, pronouns, "according to", the "This was said by" lead-in, roles ("president",
"Мемлекет басшысы"), bodies that speak ("ministry", "Kremlin") and common nouns that are never a
name ("officials", "Политик"). The constructions themselves are written once, for all languages:

- a quotation closed by an attribution (``"...," Tokayev said`` / ``», — заявил Токаев`` /
  ``», – деді Тоқаев`` / ``" diyen Tokayev`` / ``», a déclaré le ministre``) or opened by one
  (``Tokajew sagte: „...`` / ``托卡耶夫表示：“...``);
- reported speech in the sentence (``Tokayev said that``, ``sagte Tokajew``, ``по словам
  Токаева``, ``selon le ministre``, ``Tokayev'e göre``; verb-final languages, Turkish and
  Kazakh: the subject opens the sentence and a speech verb closes it);
- the next sentence naming the speaker (``This was announced by ...`` / ``Об этом заявил ...``);
- headline conventions, in titles and body sentences: ``Name: statement``,
  ``statement — Name``, ``Name says ...``.

A pronoun ("he", "он", "ол", "他") or a bare role ("the president", "Мемлекет басшысы",
"Kazakistan lideri") resolves to the last named speaker before it (for a headline: the first
named speaker of the article). A bare country name is the speaker only when no person is named
in the sentence or its paragraph; a common noun never is. Country names of every language come
from the CLDR territory names (babel), so "Kazakhstan" ends a name ("Тоқаев Қазақстан ...").

``attribute`` returns a ``Speaker``: the phrase as written, its role and name parts, and, when a
configured entity's alias (any script, any inflection) is inside it, the entity key and the
normalised form ``Tokayev — President of Kazakhstan``.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any

import ahocorasick
import regex as re

from monitor.match.text import fold, split_sentences, words
from monitor.util import code_version, keep_file
from monitor.wordset import WordSet


@dataclass(frozen=True)
class Lang:
    """The words of one language's attribution constructions (regex alternations)."""

    code: str
    verbs: str  # speech verbs, inflected forms
    pronouns: str
    roles: str  # lowercase forms; matched case-insensitively
    bodies: str = ""
    common: str = ""  # nouns that are never a speaker on their own
    according: str = ""  # before the speaker: "according to", "по словам"
    according_after: str = ""  # after the speaker: "'e göre", "айтуынша"
    # "according to him", "по его словам", "selon lui": the person spoken of last (a pronoun)
    according_pronoun: str = ""
    lead_in: str = ""  # the next sentence names the speaker: "This was said by", "Об этом заявил"
    verb_final: bool = False  # subject first, speech verb last (Turkish, Kazakh)
    connectors: str = ""  # small words inside names and roles: "of", "de", "von"
    # A source giving someone's words, then the name (genitive): "приводит слова Токаева
    # пресс-служба"; only the name's capitalised words (the source after it is not the speaker).
    quoting: str = ""


LANGS: tuple[Lang, ...] = (
    Lang("en",
         verbs=r"said|says|say|told|tells|added|adds|stated|states|noted|notes|stressed|stresses|"
               r"emphasi[sz]ed|underlined|explained|explains|declared|announced|wrote|writes|"
               r"replied|insisted|warned|warns|argued|argues|claimed|claims|concluded|"
               r"summari[sz]ed|continued|remarked|commented|recalled|urged|answered|"
               r"pointed\s+out|made\s+clear|reiterated|assured|spoke|speaks|"
               # the other reporting verbs of news English, past and present
               r"acknowledged|acknowledges|admitted|admits|confirmed|confirms|denied|denies|"
               r"suggested|suggests|predicted|predicts|cautioned|cautions|vowed|vows|pledged|"
               r"pledges|promised|promises|conceded|concedes|asserted|asserts|revealed|reveals|"
               r"signalled|signaled|signals",
         pronouns=r"he|she|they",
         roles=r"president|prime\s+minister|foreign\s+minister|deputy\s+minister|minister|"
               r"spokesperson|spokesman|spokeswoman|ambassador|leader|head\s+of\s+state|chairman|"
               r"chairwoman|governor|mayor|secretary|chancellor|senator|envoy|director|chief|"
               r"professor|analyst|economist|expert|official|coach|captain|manager|ceo|"
               r"researcher|scientist|author|founder|general|king|queen|crown\s+prince|prince|"
               r"princess|emir|pope",
         bodies=r"ministry|kremlin|government|white\s+house|presidency|press\s+service|embassy|"
                r"office|akorda|cabinet|foreign\s+office|state\s+department|bank|federation|"
                r"institute|union|company|committee|council|agency|police|court|authority|"
                r"commission|parliament|university|association",
         common=r"officials?|experts?|analysts?|observers?|sources?|critics?|residents?|"
                r"witnesses?|politicians?|diplomats?|people|reporters?|journalists?|many|some|"
                r"others|everyone|nobody|someone|authorities|economists?|the\s+president's\s+office",
         according=r"according\s+to|in\s+the\s+words\s+of",
         according_pronoun=r"according\s+to\s+(?:him|her|them)|in\s+(?:his|her|their)\s+(?:words|view)",
         lead_in=r"(?:this|that|it)\s+was\s+(?:{verbs})\s+by|(?:{verbs})\s+by",
         connectors=r"of|the|of\s+the|al|bin|ibn|van|von|de|da|di|del|la|le"),
    Lang("ru",
         verbs=r"(?:заявил|сказал|отметил|подчеркнул|добавил|сообщил|пояснил|написал|заключил|"
               r"резюмировал|уточнил|признал|предупредил|ответил|напомнил|указал|констатировал|"
               r"высказался|назвал|оценил|заверил|рассказал|выступил)(?:а|и)?|считает|считают|говорит|"
               r"говорят|заявляет|отмечает|подчеркивает|подчёркивает|утверждает|уверен|уверена",
         pronouns=r"он|она|они",
         roles=r"президент\w*|премьер-министр\w*|министр\w*|глава\s+государства|глава(?:\s+\w+)?|лидер|"
               r"спикер|председатель|посол|представитель|официальный\s+представитель|"
               r"пресс-секретарь|губернатор|мэр|канцлер|политолог|эксперт|аналитик|директор|"
               r"руководитель|заместитель|замминистра|советник|экономист|тренер|"
               r"казахстанский\s+лидер|лидер\s+\w+",
         bodies=r"кремль|мид|министерство|правительство|пресс-служба|акорда|ведомство|посольство|"
                r"администрация|банк|федерация|институт|профсоюз|компания|комитет|совет|агентство|"
                r"полиция|суд|комиссия|парламент|университет|ассоциация",
         common=r"политик|политолог|эксперты?|аналитики?|источник|источники|чиновники?|"
                r"наблюдатели|дипломаты|журналисты|собеседник|власти|многие|некоторые|"
                r"официальные\s+лица|синоптики|специалисты",
         according=r"по\s+словам|по\s+мнению|по\s+оценке|как\s+(?:сказал|заявил|отметил|"
                   r"подчеркнул|пояснил|рассказал)(?:а|и)?|как\s+(?:считает|считают|полагает|полагают)",
         according_pronoun=r"по\s+(?:его|её|ее|их)\s+(?:словам|мнению|оценке|данным)|"
                           r"как\s+(?:он|она)\s+(?:сказал|заявил|отметил|подчеркнул|пояснил)а?",
         quoting=r"(?:приводит|приводят|привел|привёл|привела|привело|привели|передает|передаёт|"
                 r"передают)\s+слова",
         lead_in=r"об\s+этом\s+(?:\w+\s+)?(?:{verbs})",
         connectors=""),
    Lang("uk",
         verbs=r"(?:заявив|заявила|заявили|сказав|сказала|сказали|зазначив|зазначила|наголосив|"
               r"наголосила|підкреслив|підкреслила|додав|додала|повідомив|повідомила|пояснив|"
               r"пояснила|написав|написала|відповів|відповіла|нагадав|нагадала|висловив|назвав|"
               r"назвала|запевнив|розповів|розповіла|констатував)|вважає|вважають|каже|кажуть|"
               r"говорить|заявляє|наголошує",
         pronouns=r"він|вона|вони",
         roles=r"президент\w*|прем'єр-міністр\w*|прем’єр-міністр\w*|міністр\w*|міністерк\w*|"
               r"глава\s+держави|глава|"
               r"очільник|лідер|речник|речниця|посол|представник|голова|політолог|експерт|"
               r"аналітик|директор|керівник|радник|казахстанський\s+лідер",
         bodies=r"кремль|мзс|міністерство|уряд|офіс\s+президента|прес-служба|посольство|акорда|"
                r"банк|федерація|інститут|профспілка|компанія|комітет|рада|агентство|поліція|суд",
         common=r"політик|політолог|експерти?|аналітики?|джерело|джерела|чиновники?|"
                r"спостерігачі|дипломати|журналісти|співрозмовник|влада|багато\s+хто|синоптики",
         according=r"за\s+словами|на\s+думку|як\s+(?:сказав|заявив|зазначив|наголосив)(?:ла)?",
         according_pronoun=r"за\s+(?:його|її|їхніми)\s+словами|на\s+(?:його|її|їхню)\s+думку|"
                           r"як\s+(?:він|вона)\s+(?:сказав|заявив|зазначив|наголосив|сказала|заявила|зазначила|наголосила)",
         quoting=r"(?:наводить|наводять|навів|навела|навело|навели|передає|передають)\s+слова",
         lead_in=r"про\s+це\s+(?:\w+\s+)?(?:{verbs})"),
    Lang("kk",
         verbs=r"(?:деп\s+)?(?:деді|айтты|мәлімдеді|атап\s+өтті|түйіндеді|жеткізді|білдірді|"
               r"хабарлады|сендірді|қосты|түсіндірді|ескертті|мәлімдейді|айтады|есептейді)",
         pronouns=r"ол|олар",
         roles=r"президент\w*|мемлекет\s+басшысы\w*|министр\w*|премьер-министр\w*|өкіл\w*|"
               r"спикер\w*|елші\w*|төраға\w*|басшы\w*|сарапшы\w*|саясаттанушы\w*|"
               r"қазақстан\s+көшбасшысы",
         bodies=r"сім|министрлігі|үкімет|ақорда|кремль|баспасөз\s+қызметі|банкі|федерациясы|"
                r"институты|кәсіподағы|компаниясы|комитеті|агенттігі|полициясы|соты",
         common=r"сарапшылар\w*|саясаттанушылар\w*|синоптиктер\w*|мамандар\w*|журналистер\w*|"
                r"тұрғындар\w*|шенеуніктер\w*|байқаушылар\w*",
         according_after=r"\s+(?:айтуынша|сөзінше|пікірінше|мәлімдеуінше|пайымдауынша)",
         lead_in=r"бұл\s+туралы\s+(?:\w+\s+){0,3}?(?:{verbs})",
         verb_final=True),
    Lang("de",
         verbs=r"sagte|sagt|sagten|erklärte|erklärt|betonte|betont|fügte\s+hinzu|teilte\s+mit|"
               r"schrieb|antwortete|warnte|unterstrich|meinte|meint|bekräftigte|kündigte\s+an|"
               r"hob\s+hervor|bezeichnete|versicherte|räumte\s+ein|sprach|so",
         pronouns=r"er|sie",
         roles=r"präsident|präsidentin|staatschef|staatschefin|ministerpräsident|außenminister|"
               r"außenministerin|minister|ministerin|sprecher|sprecherin|regierungssprecher|"
               r"botschafter|kanzler|kanzlerin|politologe|politologin|experte|expertin|analyst|"
               r"analystin|chef|chefin|kremlchef|vorsitzende|vorsitzender|bürgermeister|"
               r"direktor|direktorin|gründerin|gründer|trainer|ökonom|ökonomin|regierungschef|regierungschefin",
         bodies=r"kreml|ministerium|außenministerium|regierung|präsidialamt|botschaft|\w*bank|"
                r"verband|institut|gewerkschaft|unternehmen|ausschuss|rat|behörde|polizei|gericht|"
                r"kommission|parlament|universität",
         common=r"experten|beobachter|analysten|politiker|diplomaten|kritiker|fachleute|"
                r"beamte|quellen|anwohner|viele|einige|andere|behörden",
         according=r"laut|nach\s+angaben\s+von|so|wie",
         according_pronoun=r"(?:ihm|ihr|ihnen)\s+zufolge|nach\s+(?:seinen|ihren)\s+worten|"
                           r"(?:seiner|ihrer)\s+(?:ansicht|meinung)\s+nach|wie\s+(?:er|sie)\s+(?:sagte|erklärte|betonte)",
         lead_in=r"(?:das|dies)\s+(?:{verbs})",
         connectors=r"von|van|de|der|al"),
    Lang("fr",
         verbs=r"(?:a|avait)\s+(?:déclaré|dit|affirmé|souligné|ajouté|indiqué|précisé|expliqué|"
               r"estimé|assuré|annoncé|répondu|rappelé|averti|insisté|martelé|confié|résumé|regretté|"
               r"justifié|ajouté|prévenu)|déclare|"
               r"affirme|estime|souligne|dit|explique|ajoute|assure|indique|précise|"
               r"a-t-(?:il|elle)\s+(?:déclaré|dit|affirmé|souligné|ajouté|indiqué|précisé|"
               r"expliqué|estimé|assuré)|(?:déclare|affirme|estime|souligne|ajoute|assure|"
               r"indique|précise|explique)-t-(?:il|elle)",
         pronouns=r"il|elle|ils|elles",
         roles=r"président|présidente|ministre|porte-parole|ambassadeur|ambassadrice|"
               r"chef\s+de\s+l'état|chef\s+de\s+l’état|premier\s+ministre|gouverneur|directeur|"
               r"directrice|maire|politologue|analyste|expert|experte|économiste|entraîneur|"
               r"dirigeant|dirigeante|secrétaire\s+général|secrétaire|responsable|gouverneure",
         bodies=r"kremlin|ministère|gouvernement|élysée|quai\s+d'orsay|ambassade|présidence|banque|"
                r"fédération|institut|syndicat|entreprise|société|comité|conseil|agence|police|"
                r"tribunal|autorité|commission|parlement|université",
         common=r"experts|observateurs|analystes|responsables|sources|diplomates|habitants|"
                r"témoins|politiques|autorités|certains|beaucoup",
         according=r"selon|d'après|d’après",
         according_pronoun=r"(?:selon|d'après|d’après)\s+(?:lui|elle|eux|elles)|à\s+(?:son|leur)\s+avis",
         lead_in=r"c'est\s+ce\s+qu'a\s+(?:déclaré|dit|affirmé|indiqué|annoncé)|"
                 r"c’est\s+ce\s+qu’a\s+(?:déclaré|dit|affirmé|indiqué|annoncé)",
         connectors=r"de|du|des|de\s+la|le|la|d'|d’"),
    Lang("es",
         verbs=r"dijo|afirmó|declaró|señaló|aseguró|añadió|agregó|explicó|indicó|subrayó|"
               r"destacó|advirtió|sostuvo|respondió|manifestó|anunció|recordó|insistió|"
               r"aseveró|apuntó|dice|afirma|asegura|señala|sostiene|explica|insiste",
         pronouns=r"él|ella|ellos",
         roles=r"presidente|presidenta|ministro|ministra|portavoz|vocero|vocera|embajador|"
               r"embajadora|canciller|jefe|jefa|alcalde|alcaldesa|gobernador|gobernadora|"
               r"director|directora|secretario|secretaria|analista|experto|experta|economista|"
               r"entrenador|dirigente|líder|secretario\s+general|responsable",
         bodies=r"kremlin|ministerio|gobierno|cancillería|embajada|presidencia|banco|federación|"
                r"instituto|sindicato|empresa|compañía|comité|consejo|agencia|policía|tribunal|"
                r"autoridad|comisión|parlamento|universidad",
         common=r"expertos|analistas|fuentes|funcionarios|observadores|diplomáticos|vecinos|"
                r"testigos|autoridades|muchos|algunos",
         according=r"según|de\s+acuerdo\s+con",
         according_pronoun=r"según\s+(?:él|ella|ellos|ellas)|a\s+su\s+juicio|en\s+su\s+opinión",
         lead_in=r"así\s+lo\s+(?:{verbs})",
         connectors=r"de|del|de\s+la|la|y"),
    Lang("it",
         verbs=r"(?:ha|aveva)\s+(?:detto|dichiarato|affermato|sottolineato|aggiunto|spiegato|annunciato|"
               r"ricordato|precisato|ribadito|osservato|commentato|avvertito|assicurato|"
               r"evidenziato|concluso|risposto)|dice|afferma|dichiara|sottolinea|spiega|aggiunge|"
               r"osserva|ribadisce|avverte|assicura",
         pronouns=r"lui|lei|loro",
         roles=r"presidente|presidentessa|ministro|ministra|portavoce|ambasciatore|ambasciatrice|premier|"
               r"primo\s+ministro|sindaco|sindaca|governatore|direttore|direttrice|segretario|segretaria|"
               r"analista|esperto|esperta|economista|allenatore|capitano|amministratore\s+delegato|"
               r"leader|capo|responsabile",
         bodies=r"ministero|governo|cremlino|farnesina|ambasciata|presidenza|banca|federazione|istituto|"
                r"sindacato|azienda|società|comitato|consiglio|agenzia|polizia|tribunale|autorità|"
                r"commissione|parlamento|università",
         common=r"esperti|analisti|fonti|funzionari|osservatori|diplomatici|residenti|testimoni|autorità|"
                r"molti|alcuni",
         according=r"secondo|stando\s+a",
         according_pronoun=r"secondo\s+(?:lui|lei|loro)|a\s+suo\s+(?:dire|avviso|giudizio)",
         lead_in=r"lo\s+ha\s+(?:detto|dichiarato|affermato|annunciato|spiegato)",
         connectors=r"di|del|della|dei|da|de"),
    Lang("pt",
         verbs=r"disse|afirmou|declarou|destacou|acrescentou|explicou|sublinhou|ressaltou|anunciou|"
               r"garantiu|assegurou|lembrou|advertiu|alertou|defendeu|avaliou|respondeu|reiterou|"
               r"diz|afirma|declara|explica|ressalta|garante|avalia|defende",
         pronouns=r"ele|ela|eles|elas",
         roles=r"presidente|presidenta|ministro|ministra|porta-voz|embaixador|embaixadora|"
               r"primeiro-ministro|primeira-ministra|prefeito|prefeita|governador|governadora|diretor|"
               r"diretora|secretário|secretária|secretário-geral|analista|especialista|economista|"
               r"técnico|treinador|líder|chefe|dirigente|responsável",
         bodies=r"ministério|governo|kremlin|itamaraty|embaixada|presidência|banco|federação|instituto|"
                r"sindicato|empresa|companhia|comitê|comité|conselho|agência|polícia|tribunal|"
                r"autoridade|comissão|parlamento|universidade",
         common=r"especialistas|analistas|fontes|autoridades|observadores|diplomatas|moradores|"
                r"testemunhas|muitos|alguns",
         according=r"segundo|de\s+acordo\s+com|conforme",
         according_pronoun=r"segundo\s+(?:ele|ela|eles|elas)|na\s+opinião\s+(?:dele|dela)|na\s+sua\s+opinião",
         lead_in=r"foi\s+o\s+que\s+(?:disse|afirmou|declarou)",
         connectors=r"de|do|da|dos|das"),
    Lang("pl",
         verbs=r"(?:powiedział|oświadczył|stwierdził|podkreślił|dodał|zaznaczył|zapowiedział|przekazał|"
               r"ocenił|wyjaśnił|poinformował|przyznał|ostrzegł|zapewnił|przypomniał|odpowiedział|"
               r"napisał|ogłosił)a?|mówi|twierdzi|uważa|podkreśla|zaznacza|ocenia",
         pronouns=r"on|ona|oni|one",
         roles=r"prezydent\w*|premier\w*|minist(?:er|ra|rowi|rem|rze)\w*|rzeczni\w*|ambasador\w*|"
               r"szef\w*|przewodnicząc\w*|burmistrz\w*|prezes\w*|dyrektor\w*|ekspert\w*|analityk\w*|"
               r"ekonomist\w*|trener\w*|lider\w*|wicepremier\w*|wiceminister\w*",
         bodies=r"ministerstwo|rząd|kreml|msz|ambasada|bank|federacja|instytut|związek|spółka|firma|"
                r"komitet|rada|agencja|policja|sąd|komisja|parlament|sejm|uniwersytet",
         common=r"eksperci|analitycy|źródła|urzędnicy|obserwatorzy|dyplomaci|mieszkańcy|świadkowie|"
                r"władze|wielu|niektórzy",
         according=r"według|zdaniem|jak\s+(?:powiedział|podkreślił|zaznaczył|poinformował)a?",
         according_pronoun=r"(?:według|zdaniem)\s+(?:niego|niej|nich)|(?:jego|jej|ich)\s+zdaniem",
         lead_in=r"(?:to|tak)\s+(?:powiedział|oświadczył|stwierdził)a?",
         connectors=""),
    Lang("tr",
         verbs=r"dedi|diyen|söyledi|belirtti|açıkladı|vurguladı|ifade\s+etti|kaydetti|dile\s+getirdi|"
               r"ekledi|yanıtladı|bildirdi|altını\s+çizdi|duyurdu|hatırlattı|uyardı|savundu|"
               r"aktardı|diye\s+konuştu|diyor|söylüyor|belirtiyor",
         pronouns=r"o|onlar",
         roles=r"cumhurbaşkanı|devlet\s+başkanı|başbakan|dışişleri\s+bakanı|bakan|bakanı|"
               r"sözcüsü|sözcü|büyükelçi|büyükelçisi|lider|lideri|başkan|başkanı|uzman|analist|"
               r"yönetmen|antrenör|kazakistan\s+lideri|"
               # with the possessive of "<Organisation> <role> <Name>" ("Ege Spor başantrenörü")
               r"antrenörü|başantrenör|başantrenörü|teknik\s+direktör|teknik\s+direktörü|müdür|"
               r"müdürü|genel\s+müdür|genel\s+müdürü|sekreter|sekreteri|genel\s+sekreteri|kaptan|"
               r"kaptanı|yönetici|yöneticisi|vali|valisi|milletvekili|ekonomist|ekonomisti|"
               r"profesör|akademisyen|temsilci|temsilcisi|uzmanı|analisti|yönetmeni",
         bodies=r"bakanlığı|kremlin|hükümet|dışişleri|cumhurbaşkanlığı|büyükelçiliği|bankası|"
                r"federasyonu|enstitüsü|sendikası|şirketi|komitesi|kurulu|ajansı|polis|mahkemesi|"
                r"meclisi|üniversitesi",
         common=r"uzmanlar|analistler|yetkililer|kaynaklar|gözlemciler|diplomatlar|sakinler|"
                r"tanıklar|yetkili",
         according_after=r"[’']?(?:[ynsş]?[ea]|[ynsş]?[ıiuü]n[ae])\s+göre",
         according_pronoun=r"(?:ona|onlara)\s+göre",
         lead_in=r"bunu\s+(?:{verbs})",
         verb_final=True),
    Lang("zh",
         verbs=r"表示|说|称|强调|指出|认为|宣布|回应|回答|介绍|坦言|透露",
         pronouns=r"他|她|他们",
         roles=r"总统|总理|外长|部长|发言人|大使|主席|领导人",
         bodies=r"外交部|克里姆林宫|政府|银行|协会|研究所|工会|公司|委员会|组委会|警方|法院",
         common=r"记者|专家|分析人士|官员|消息人士|人士|主办方|居民|据悉|有关方面"),
)
BY_CODE = {lang.code: lang for lang in LANGS}


@dataclass(frozen=True)
class Speaker:
    """Who made a statement, as written, with its normalised form."""

    written: str  # the attributed phrase as the text has it: "President Kassym-Jomart Tokayev"
    name: str  # without the role: "Kassym-Jomart Tokayev" (the role itself for a body)
    role: str = ""  # "President"
    entity: str | None = None  # configured entity key whose alias is inside
    display: str = ""  # "Tokayev — President" or the name without the role

    def __str__(self) -> str:
        return self.display or self.name


# --- building blocks ------------------------------------------------------------------------

_OPEN = "\"“«„「『‚‘"
_CLOSE = "\"”»“」』’‘"
_UP = r"\p{Lu}"
_WORD = rf"(?:{_UP}\.(?=\s{_UP})|(?:[ldLD][’'])?{_UP}[\p{{L}}\p{{M}}]*(?:[-‐][\p{{L}}\p{{M}}]+)*)"  # Kassym-Jomart, M. Dupont
_APOS_SUFFIX = r"(?:[’'][\p{Ll}]{1,5})?"  # Turkish case endings: Tokayev'in, Tokayev'e
_DASH = r"[—–-]"


def _alt(parts: Iterable[str]) -> str:
    return "|".join(f"(?:{p})" for p in parts if p)


def _phrase_words() -> tuple[str, str]:
    """The speaker phrase (``_WHO``) and the definition of its token (``_WHO_DEF``)."""
    roles = _alt(lang.roles for lang in LANGS if lang.code != "zh")
    bodies = _alt(lang.bodies for lang in LANGS if lang.code != "zh")
    conn = _alt(lang.connectors for lang in LANGS if lang.connectors)
    # A token of a speaker phrase: a capitalised word (with a possessive), a role or body word
    # (any case), or a connector between them. The token is written once, as a group the phrase
    # calls twice: its ~3,800 characters of role and body words are most of what compiling a
    # speaker pattern costs (the regex module parses a pattern in Python, character by
    # character), and a called group matches as the same text written in place would.
    tok = rf"(?:{_WORD}(?:[’']s)?{_APOS_SUFFIX}|(?i:{roles}|{bodies})(?!\w))"
    # Up to two connectors between tokens: "Ursula von der Leyen", "Jean de la Fontaine".
    return rf"(?:(?&tok)(?:\s+(?:(?:{conn})\s+){{0,2}}(?&tok)){{0,6}})", rf"(?(DEFINE)(?P<tok>{tok}))"


_WHO, _WHO_DEF = _phrase_words()  # a pattern holding _WHO ends with _WHO_DEF (``_compile``)
_ZH_WHO = r"[\p{Han}·]{1,16}?"


def _verbs(lang: Lang) -> str:
    return rf"(?:{lang.verbs})"


# --- where a speaker phrase can start ----------------------------------------------------------
#
# A pattern that opens with the speaker phrase (``Tokayev said``, ``по словам Токаева``) is tried
# by the regex engine at every character of a sentence, and each try walks the phrase's first
# token: a capitalised word or any of some 400 role and body words in nine languages, in any case
# (a few microseconds a character: most of the cost of finding who spoke). The phrase can only
# start where its first token can: a capital letter, ``d'``/``l'`` before one, or one of those
# words' literal beginnings. ``_Starts`` finds these places (one Aho-Corasick pass over the
# lowercased sentence) and the pattern is tried there alone, in order, as ``finditer`` would:
# the same matches, leftmost first, non-overlapping.

_QUANTIFIERS = "? * + {"  # after a letter: that letter may be missing
_ANY_WORD = r"\w*"
# Case-insensitive matching relates characters lower() keeps apart (ı and I, İ and i, ſ and s):
# they count as the same letter here (more places to try, never fewer); İ also lowercases to two
# characters, which would shift every offset after it.
_COARSE = str.maketrans({"İ": "i", "ı": "i", "ſ": "s", "I": "i"})
_CAP = re.compile(r"\p{Lu}|[ldLD][’']")
_WORD_RUN = re.compile(r"\w+")


def _branches(alternation: str) -> list[str]:
    """The top-level branches of a word list (``a|b(?:c|d)|e`` -> a, b(?:c|d), e)."""
    out: list[str] = []
    depth, start, i, in_class = 0, 0, 0, False
    while i < len(alternation):
        ch = alternation[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(alternation[start:i])
            start = i + 1
        i += 1
    out.append(alternation[start:])
    return out


def _literal_start(branch: str) -> tuple[str, bool] | None:
    """The letters a branch of a word list always starts with (lowercase), and whether any
    word characters may come first (``\\w*bank``); None when it starts otherwise."""
    anywhere = branch.startswith(_ANY_WORD)
    rest = branch[len(_ANY_WORD):] if anywhere else branch
    lit = []
    for i, ch in enumerate(rest):
        if not (ch.isalnum() or ch in "'’-") or rest[i + 1:i + 2] in _QUANTIFIERS.split():
            break
        lit.append(ch)
    return ("".join(lit).translate(_COARSE).lower(), anywhere) if lit else None


class _Starts:
    """Where a speaker phrase made of ``word_lists`` (regex alternations matched in any case,
    after capitalised words) can start in a text."""

    def __init__(self, word_lists: Iterable[str]):
        self.usable = True
        self.anywhere: set[str] = set()
        literals: set[str] = set()
        for branch in (b for wl in word_lists for b in _branches(wl)):
            start = _literal_start(branch)
            if start is None:
                self.usable = False  # a branch this cannot read: try every character
            elif start[1]:
                self.anywhere.add(start[0])
            else:
                literals.add(start[0])
        self.auto = ahocorasick.Automaton()
        for lit in literals:
            self.auto.add_word(lit, len(lit))
        if literals:
            self.auto.make_automaton()

    def positions(self, text: str) -> list[int] | None:
        """Sorted offsets where the phrase may start, or None: try every offset."""
        low = text.translate(_COARSE).lower()
        if not self.usable or len(low) != len(text):
            return None
        pos = {m.start() for m in _CAP.finditer(text)}
        if self.auto.kind == ahocorasick.AHOCORASICK:
            pos.update(end - n + 1 for end, n in self.auto.iter(low))
        for lit in self.anywhere:
            if lit in low:
                for m in _WORD_RUN.finditer(text):
                    last = low.rfind(lit, m.start(), m.end())
                    if last >= 0:
                        pos.update(range(m.start(), last + 1))
        return sorted(pos)


@dataclass(frozen=True)
class _Rx:
    """A speaker pattern, compiled the first time a text could hold a match of it.

    ``needs`` are parts of the pattern (what stands before or after the speaker phrase) that
    every match of it holds: a text one of them is not found in has no match, so the pattern is
    neither compiled nor tried there. Most patterns carry the speaker phrase (every language's
    role and body words) and cost ~10 ms of CPU each to compile; a process compiles only those
    its texts can match (a quotation closed by an attribution needs a closing quote mark)."""

    kind: str  # "after" (closing a quote), "before" (opening one), "in" (reported), "next", "head"
    pattern: str
    lang: str
    starts: _Starts | None = None  # the pattern opens with the speaker phrase: where it can start
    needs: tuple[str, ...] = ()  # parts every match contains, each a pattern of its own

    @cached_property
    def rx(self) -> Any:
        return _compile(self.pattern)

    @cached_property
    def _needed(self) -> tuple[Any, ...]:
        return tuple(_cached(n) for n in self.needs)

    def finditer(self, text: str) -> list[Any]:
        """``rx.finditer(text)``, trying only where the speaker phrase can start (``_Starts``)."""
        if any(n.search(text) is None for n in self._needed):
            return []
        cands = self.starts.positions(text) if self.starts is not None else None
        if cands is None:
            return list(self.rx.finditer(text))
        out = []
        end = 0
        match = self.rx.match
        for p in cands:
            if p >= end:
                m = match(text, p)
                if m is not None:
                    out.append(m)
                    end = m.end()  # a phrase is never empty: the next search starts here
        return out


def _compile(pattern: str) -> Any:
    """``pattern`` compiled (``_cached``), with the speaker phrase's token defined when it calls it."""
    return _cached(pattern + _WHO_DEF if "(?&tok)" in pattern else pattern)


class _PatternOnly(pickle.Unpickler):
    """Unpickles a compiled pattern and nothing else: a cache file cannot make it run other code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("regex._regex", "compile"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"not a compiled pattern: {module}.{name}")


def _cached(source: str) -> Any:
    """``re.compile(source)``, compiled once per machine: kept in ``_cache_folder()``.

    The regex module parses a pattern in Python, character by character: ~10 ms of CPU for one
    holding the speaker phrase (3-7 of them for each language a process meets, on the ingest
    thread), 2-8 ms for one holding a language's speech verbs or every language's roles. A
    pickled pattern holds the regex module's compiled code, and unpickling it (~0.3 ms) hands
    that code to its C part without parsing. Files are named by the regex module's version (the
    code's format), the version of the code that makes the patterns (``_patterns_version``) and
    the pattern's hash; writing one prunes the old files of other versions (``keep_file``). An
    unreadable or foreign file is compiled over, an unwritable directory (or none) only costs
    the compile."""
    folder = _cache_folder()
    if folder is None:
        return re.compile(source)
    version = f"regex-{re.__version__}-{_patterns_version()}-"
    path = folder / f"{version}{hashlib.sha256(source.encode()).hexdigest()[:32]}.pickle"
    try:
        with path.open("rb") as f:
            rx = _PatternOnly(f).load()
        if isinstance(rx, re.Pattern) and rx.pattern == source:
            return rx
    except Exception:  # noqa: BLE001 - missing, partly written by a crash, another version: compiled anew
        pass
    rx = re.compile(source)
    keep_file(path, pickle.dumps(rx, protocol=pickle.HIGHEST_PROTOCOL), prune=("regex-*.pickle", version))
    return rx


@cache
def _patterns_version() -> str:
    """Names the kept patterns' version by the code that makes them (this module and ``text``):
    a new version's files replace the old ones' (which no pattern of it names any more)."""
    from monitor.match import text

    return code_version(files=(__file__, text.__file__))[:16]


def _cache_folder() -> Path | None:
    """Where this module keeps what it makes once per machine (``cache_dir()``), None without a
    home directory to find it by."""
    from monitor.util import cache_dir

    try:
        return cache_dir() / "speakers"
    except OSError:  # no home directory to find it by
        return None


@cache
def _who_starts(*pronouns: str) -> _Starts:
    """Where ``_WHO`` or one of ``pronouns`` (alternations) can start."""
    return _Starts([*(lang.roles for lang in LANGS if lang.code != "zh"),
                    *(lang.bodies for lang in LANGS if lang.code != "zh"), *pronouns])


@lru_cache(maxsize=1)
def _who_rx() -> _Rx:
    """The speaker phrase on its own (mentions of a role and a name)."""
    return _Rx("who", _WHO, "", _who_starts())


@cache
def _lang_patterns(code: str) -> tuple[_Rx, ...]:
    """One language's patterns, made the first time a sentence holds one of its speech words;
    each compiles the first time a sentence could hold a match of it (``_Rx``)."""
    lang = BY_CODE[code]
    v = _verbs(lang)
    pron = rf"(?:{lang.pronouns})"
    ci = "(?i:" + v + ")"
    if code == "zh":
        b = r"(?:^|(?<=[。！？；，、：”」】\s]))"
        who = rf"(?P<who>{_ZH_WHO})"
        return (
            _Rx("before", rf"{b}{who}(?:在[^。，“”]{{0,40}}?时)?(?:{v})\s*[：:，,]\s*[“「\"]", "zh"),
            _Rx("in", rf"{b}{who}(?:在[^。，“”]{{0,40}}?时)?(?:{v})", "zh"),
            _Rx("in", rf"据(?P<who>{_ZH_WHO})(?:称|说|表示)", "zh"),
        )
    out: list[_Rx] = []
    who = rf"(?P<who>{_WHO}|(?i:{pron})(?!\w))"
    starts = _who_starts(lang.pronouns)

    def rx(kind: str, head: str, who: str, tail: str, starts: _Starts | None = None) -> _Rx:
        """The pattern ``head who tail``: head and tail (when given) are its needs."""
        return _Rx(kind, head + who + tail, code, starts, tuple(x for x in (head, tail) if x))

    # Quotation closed by the attribution: «...», — заявил Токаев / "...", Tokayev said.
    out.append(rx("after", rf"[{_CLOSE}]\s*,?\s*(?:{_DASH}+\s*)?{ci}(?:\s+\w+){{0,2}}?\s+", who, ""))
    out.append(rx("after", rf"[{_CLOSE}]\s*,?\s*(?:{_DASH}+\s*)?", who,
                  rf"\s*,?\s+(?:also\s+|has\s+|had\s+)?{ci}(?!\w)"))
    # Quotation opened by it: Tokajew sagte: „...
    out.append(rx("before", "", who,
                  rf"\s*,?\s+(?:\w+\s+){{0,2}}?{ci}[^{_OPEN}{_CLOSE}.!?]{{0,60}}?[:,]\s*[{_OPEN}]", starts))
    # Reported speech in the sentence.
    out.append(rx("in", "", who, rf"\s*,?\s+(?:(?:also|has|had|also\s+has|также|також|"
                                 rf"auch|a\s+également|también|ayrıca|накануне)\s+)?{ci}(?!\w)", starts))
    # "..., said X": not "..., confirmed to WIRED" (whom it was said to); and the verb, then the
    # pronoun: "..., добавил он.", "..., sagte er." (one pattern: one search for its verb)
    out.append(rx("in", rf"(?:[,{_CLOSE}]\s*(?:{_DASH}+\s*)?|{_DASH}\s+){ci}(?:\s+(?!to\s)\w+){{0,2}}?\s+",
                  rf"(?:(?P<who>{_WHO})|(?P<anaphor>(?i:{pron}))(?!\w)(?P<who>))"
                  if lang.pronouns and not lang.verb_final else rf"(?P<who>{_WHO})", ""))
    if lang.according:
        out.append(rx("in", rf"(?<!\w)(?i:{lang.according})\s+", who, ""))
    if lang.quoting:
        out.append(rx("in", rf"(?<!\w)(?i:{lang.quoting})\s+", rf"(?P<who>{_WORD}(?:\s+{_WORD}){{0,3}})", ""))
    if lang.according_pronoun:
        # "According to him, ...", "По его словам, ...", "Selon lui, ...": the person spoken of
        # last, as for "he said" (``_candidates`` makes it a pronoun).
        out.append(rx("in", "", rf"(?<!\w)(?P<anaphor>(?i:{lang.according_pronoun}))(?!\w)(?P<who>)", ""))
    if lang.according_after:
        out.append(rx("in", "", rf"(?P<who>{_WHO}|(?i:{pron}|оның|олардың))", rf"(?i:{lang.according_after})",
                      _who_starts(lang.pronouns, "оның|олардың")))
    if lang.verb_final:
        # Subject first, speech verb last: "Tokayev, ... belirtti." / "Тоқаев ... мәлімдеді."
        out.append(rx("final", "", rf"^\W*(?P<who>{_WHO})", rf"[\s,][^.!?]*?(?<!\w){ci}\W*$"))
    if lang.lead_in:
        lead = lang.lead_in.replace("{verbs}", lang.verbs)
        out.append(rx("next", rf"^\W*(?i:{lead})\s+(?:(?:\w+\s+){{0,2}}?)", rf"(?P<who>{_WHO})", ""))
    return tuple(out)


@lru_cache(maxsize=1)
def _shared_patterns() -> tuple[_Rx, ...]:
    """The patterns after the languages' own, in this order: Chinese headlines (no verb, so
    ungated), French inversion, headline conventions."""
    return (
        _Rx("head", r"^(?P<who>[\p{Han}·]{2,16})[：:]", ""),
        # French inversion after a quotation: « ... », a-t-il déclaré / déclare-t-elle.
        _Rx("after", rf"[{_CLOSE}]\s*,?\s*\w+-t-(?P<who>il|elle)(?!\w)", "fr"),
        # and after reported speech: "Les négociations reprendront, a-t-il ajouté."
        _Rx("in", r",\s*\w+-t-(?P<anaphor>il|elle)(?!\w)(?P<who>)", "fr"),
        # Headlines (and interview-style body sentences): "Name: statement", "statement — Name".
        _Rx("head", rf"^\W*(?P<who>{_WHO})\s?:\s", "", needs=(r"\s?:\s",)),
        _Rx("tail", rf"\s{_DASH}\s+(?P<who>{_WHO})\W*$", "", needs=(rf"\s{_DASH}\s+",)),
    )


def _patterns(present: Iterable[str]) -> list[_Rx]:
    """The patterns of the languages in ``present`` and the shared ones, in table order (ties
    between speakers found at one position go to the earlier pattern)."""
    langs = set(present)
    out = [p for lang in LANGS if lang.code in langs for p in _lang_patterns(lang.code)]
    return out + list(_shared_patterns())


# --- classifying a phrase -------------------------------------------------------------------

def _fullmatch_any(field: str) -> Any:
    return _cached(rf"(?i:{_alt(getattr(lang, field) for lang in LANGS)})")


_ROLE = _fullmatch_any("roles")
_BODY = _fullmatch_any("bodies")
_COMMON = _fullmatch_any("common")
_PRONOUN = _fullmatch_any("pronouns")
_NOT_NAME = frozenset(("this", "that", "it", "the", "there", "here", "we", "i", "you", "это", "в", "на",
                       "и", "но", "а", "as", "in", "on", "but", "and", "if", "when", "so", "yes", "no",
                       "a", "an", "after", "before", "while", "asked", "nothing", "each", "every",
                       "some", "his", "her", "their", "our", "its", "what", "why", "how", "who",
                       "wenn", "aber", "und", "das", "es", "ein", "eine", "mais", "et", "pero", "y",
                       "при", "если", "после", "однако", "утім", "але", "алайда", "ancak", "bu", "как", "як",
                       "так", "также", "також", "тем", "затем", "потом", "мы", "я", "ми", "біз",
                       "wie", "comme", "como", "and", "also"))


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    """Country names in every language of the table (CLDR via babel), folded, with inflections.

    Kept in ``_cache_folder()`` like the compiled patterns: loading babel's locale data of nine
    languages and folding ~20,000 forms took ~70 ms of CPU, most of what a process's first match
    cost once its patterns load from the cache. The file is named by babel's version (its CLDR
    data) and a hash of the code that derives the names (this module, ``query``'s inflections,
    ``text``'s fold): a change to either makes a new one, which prunes the old."""
    path = _countries_file(".json")
    try:
        if path is not None:
            names = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(names, list) and all(isinstance(n, str) for n in names):
                return frozenset(names)
    except Exception:  # noqa: BLE001 - missing or damaged: derived anew
        pass
    found = _derive_countries()
    if path is not None:
        keep_file(path, json.dumps(sorted(found), ensure_ascii=False).encode(), prune=("countries-*.json", path.name))
    return found


def _countries_file(suffix: str, *layout: str) -> Path | None:
    """Where the country names are kept (``suffix``: the file's format), named by babel's
    version and a hash of the code that derives them and of the ``layout`` code that writes the
    file (see ``_countries``); None without a cache folder."""
    import babel

    from monitor.match import query, text
    folder = _cache_folder()
    if folder is None:
        return None
    return folder / f"countries-{code_version(babel.__version__, files=(__file__, query.__file__, text.__file__, *layout))}{suffix}"


def _derive_countries() -> frozenset[str]:
    from babel import Locale

    from monitor.match.query import inflections
    forms: set[str] = set()  # folded once each: many names are spelt alike in several languages
    for lang in LANGS:
        try:
            terr = Locale.parse(lang.code).territories
        except Exception:  # noqa: BLE001 - a locale babel lacks: that language's names are missing
            continue
        for code, name in terr.items():
            if code.isalpha() and len(name.split()) == 1:
                forms.update(inflections(name))
    return frozenset(map(fold, forms))


# Compiled once: the regex module's own functions look a pattern up in their cache on every
# call, which cost more than the match (speaker phrases are classified word by word).
# Turkish case endings of a place (in, from it): "Ankara'da", "Astana'dan", "Paris'teki"; not the
# genitive or dative a name takes as a speaker ("Tokayev'in", "Tokayev'e göre").
_WHERE_SUFFIX = re.compile(r"[’'](?:d|t)(?:a|e)(?:n|ki)?$")
_APOSTROPHE_ON = re.compile(r"[’'].*$")  # "Tokayev's" -> "Tokayev"
_POSSESSIVE = re.compile(r"[’'](?:s|[\p{Ll}]{1,5})$")  # "Tokayev'in" -> "Tokayev"
_HAN = re.compile(r"\p{Han}")
_SENTENCE_END = re.compile(r"[.!?]\s")


@cache
def _country_words() -> WordSet | frozenset[str]:
    """``_countries()`` as the process keeps them: ~20,000 folded names are ~3.8 MB as a set of
    strings in the daemon's process (which attributes speakers), ~0.4 MB as a ``WordSet``, and
    asked about only a few hundred times a run (bench.ingest's 299 articles: 723 times). Kept
    beside ``_countries``' file in ``WordSet``'s layout and mapped from it (building it from
    the names costs ~15 ms more; mapped, no string of them is made).

    Only where NumPy, which ``WordSet`` uses, is loaded already (the daemon: its stories): a
    process that only matches (a rule tried from the command line) would import it for this
    alone (~70 ms) and keeps the set."""
    import sys

    from monitor import wordset

    if "numpy" not in sys.modules:
        return _countries()
    path = _countries_file(".bin", wordset.__file__)
    if path is not None:
        try:
            return WordSet.load(path)
        except (OSError, ValueError, KeyError, TypeError):  # not kept yet (or not whole): made now
            pass
    words = WordSet(_countries.__wrapped__())  # not through its cache: the names do not stay
    if path is not None:
        keep_file(path, words.dumps(), prune=("countries-*.bin", path.name))
    return words


def _is_country(word: str) -> bool:
    return fold(_APOSTROPHE_ON.sub("", word)) in _country_words()


def _full(rx: Any, s: str) -> bool:
    return rx.fullmatch(s.strip()) is not None


def _split(phrase: str) -> tuple[str, str, str]:
    """(role, name, kind) of a speaker phrase; kind is person, body, role, country, common or
    none. The name is the trailing run of capitalised words that are neither roles nor
    countries; a country after the name ends the phrase ("Тоқаев Қазақстан ...")."""
    toks = phrase.split()
    while toks and toks[0].strip("«»\"“”„'").lower() in _NOT_NAME:
        toks = toks[1:]
    while toks and (toks[-1].lower() in _NOT_NAME or _full(_CONNECTOR, toks[-1])):
        toks = toks[:-1]
    if not toks:
        return "", "", "none"
    role: list[str] = []
    name: list[str] = []
    used = 0
    # A connector after a role or a body word starts its complement, not a name, whether or
    # not its place is a known country: "President of Veldora", "secretario general del SEM",
    # "Ministerio de Transportes", "Federation of Veldoran Traders" were people named
    # "Veldora", "SEM", "Transportes" and "Traders".
    apposed = False  # "Name, what the name is"
    held = ""  # "role" or "body": the last word put in ``role`` was (or a connector after) one
    complement = ""  # the words after such a connector are that role's or body's
    for i, t in enumerate(toks):
        if t.endswith(",") and i + 1 < len(toks):
            if (name or t[:1].isupper()) and not role and not _is_country(_POSSESSIVE.sub("", t[:-1])) \
                    and not _full(_ROLE, t[:-1]) and not _full(_BODY, t[:-1]):
                # "John Williams, the president of the Federal Reserve Bank of New York": the
                # name, then what it is (its words were taken for the name, "Federal Reserve
                # New York", the name itself for a role)
                if len(name) < 4:
                    name.append(_POSSESSIVE.sub("", t[:-1]))
                role, used, apposed = toks[i + 1:], len(toks), True
                break
            role += [*name, t[:-1]]  # "ministra de Transporte, Aigerim Sadykova"
            name = []
            used = i + 1
            held = complement = ""
            continue
        bare = _POSSESSIVE.sub("", t)
        if name and _WHERE_SUFFIX.search(t):
            break  # "Bakan Deniz Sarp Ankara'da konuştu": where the name was, not more of it
        is_role = _full(_ROLE, t) or _full(_ROLE, " ".join(toks[max(0, i - 1):i + 1])) or \
            _full(_ROLE, " ".join(toks[i:i + 2]))
        is_body = _full(_BODY, t)
        is_connector = _full(_CONNECTOR, t)
        if is_connector and name and not held and t.lower() in _PARTICLES and _particle_of(toks, i):
            name.append(t)  # "Ursula von der Leyen", "Mohammed bin Salman": the name goes on
            used = i + 1
            continue
        if is_connector and name and not held and t.lower() not in _PARTICLES:
            break  # "Tova Lind of Orvania", "Tokayev of Kazakhstan": where the name is from
        if is_connector and held:
            complement = complement or held
        elif complement and t[:1].isupper() and not (is_role or is_body or _is_country(bare)):
            # the complement: "of Veldora", "del SEM"; a body's goes on ("Federation of
            # Veldoran Traders"), a role's is one word ("Minister of Finance Arun Kesh")
            role.append(t)
            held = complement = "body" if complement == "body" else ""
            used = i + 1
            continue
        else:
            complement = ""
        if name and is_role and (len(name) == 1 or _name_after_role(toks, i)) and not _is_country(bare):
            # "Kazakh President", "Russian Foreign Minister": a modifier; "Goldman Sachs CEO David
            # Solomon", "Ege Spor başantrenörü Selim Kara": the organisation whose role it is
            role += name
            name = []
        elif name and (_is_country(bare) or is_role):
            break  # "Tokayev Kazakhstan ..." or "Tokayev President ...": the name ended
        if is_role or is_body or _is_country(bare) or is_connector or not t[:1].isupper():
            role.append(t)
            held = "role" if is_role else "body" if is_body else held if is_connector else ""
        elif sum(1 for w in name if w[:1].isupper()) < 4:
            name.append(bare)
            held = ""
        else:
            break
        used = i + 1
    while len(name) > 1 and name[-1].lower() in _PARTICLES:  # "Mohammed bin" of "Mohammed bin, ..."
        name.pop()
    _LAST_USED[0] = " ".join(toks[:used])
    role_s, name_s = " ".join(role), " ".join(name)
    last_name = max((i for i, t in enumerate(toks[:used]) if _APOSTROPHE_ON.sub("", t) in name), default=-1)
    if name and not apposed and any(_full(_BODY, t) or _full(_BODY, " ".join(toks[i:i + 2]))
                    for i, t in enumerate(toks[:used]) if i > last_name):
        return "", " ".join(toks), "body"  # "Kazakhstan's Foreign Ministry", "National Bank of X"
    if name_s and _full(_COMMON, name_s):
        return role_s, "", "common"
    if name_s:
        return role_s, name_s, "person"
    joined = " ".join(role)
    if _full(_COMMON, joined) or _full(_COMMON, joined.split(" ", 1)[-1]):
        return joined, "", "common"
    if any(_full(_BODY, w) for w in toks) or _BODY.search(joined):
        return "", joined, "body"
    if len(toks) == 1 and _is_country(_APOSTROPHE_ON.sub("", toks[0])):
        return "", toks[0], "country"
    if any(_full(_ROLE, w) for w in toks) or _ROLE.search(joined):
        return joined, "", "role"
    return "", "", "none"


_CONNECTOR = _fullmatch_any("connectors")


# The small words inside a person's name (a subset of the connectors: not "of", "the").
_PARTICLES = frozenset(("von", "van", "der", "den", "de", "da", "di", "del", "della", "la", "le", "du", "des",
                        "bin", "ibn", "al", "el", "ben", "dos", "das", "do"))


def _particle_of(toks: list[str], i: int) -> bool:
    """Whether the connector at ``toks[i]`` joins a name's words: more particles, then a
    capitalised word that is no role, body or country ("von der Leyen", not "Tokayev of
    Kazakhstan" or "Ruiz, ministra de Transporte")."""
    j = i
    while j < len(toks) and toks[j].lower() in _PARTICLES:
        j += 1
    return j < len(toks) and not toks[i - 1].endswith(",") and _a_name_word(toks[j].rstrip(","))


def _a_name_word(t: str) -> bool:
    """Whether the token can be a word of a person's name: capitalised, and no role, body or country."""
    return t[:1].isupper() and not (_full(_ROLE, t) or _full(_BODY, t) or _is_country(_POSSESSIVE.sub("", t)))


def _name_after_role(toks: list[str], i: int) -> bool:
    """Whether a name follows the role at ``toks[i]`` (after the role's other words): the
    capitalised words before the role are then whose role it is, not the speaker's name."""
    j = i + 1
    while j < len(toks) and (_full(_ROLE, toks[j]) or _full(_ROLE, " ".join(toks[i:j + 1]))):
        j += 1
    if j >= len(toks):
        return False
    t = toks[j].rstrip(",")
    return _a_name_word(t) and not _full(_CONNECTOR, t)
_LAST_USED = [""]  # the tokens of the phrase ``_split`` consumed (the speaker as written)


def _zh_split(phrase: str) -> tuple[str, str, str]:
    zh = BY_CODE["zh"]
    if re.fullmatch(rf"(?:{zh.pronouns})", phrase):
        return "", phrase, "pronoun"
    if re.search(rf"(?:{zh.common})", phrase):
        return "", "", "common"
    m = re.search(rf"(?:{zh.roles})", phrase)
    if m:
        name = phrase[m.end():]
        if len(name) >= 2:
            return phrase[:m.end()], name, "person"
        return phrase, "", "role"
    if re.search(rf"(?:{zh.bodies})", phrase):
        return "", phrase, "body"
    if len(phrase) < 2 or len(phrase) > 8:
        return "", "", "none"
    return "", phrase, "person"


def classify(phrase: str) -> tuple[str, str, str]:
    """(role, name, kind) of an attributed phrase (see ``_split``)."""
    phrase = phrase.strip().strip(",;:.!?")
    if _HAN.search(phrase):
        return _zh_split(phrase)
    if _full(_PRONOUN, phrase):
        return "", phrase, "pronoun"
    return _split(phrase)


# --- entities -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Alias:
    entity: str
    forms: tuple[tuple[str, ...], ...]  # folded word sequences


def _alias_forms(alias: str, inflect: bool) -> list[tuple[str, ...]]:
    """The word sequences an alias stands for: its spellings in other scripts (as rules match
    them: Tokayev, Токаев, Токаєв, Tokajew), each with its case forms when ``inflect``."""
    from monitor.match.query import inflections
    from monitor.match.translit import transliterations
    out: list[tuple[str, ...]] = []
    for spelling in sorted(transliterations(alias)):
        parts = spelling.split()
        if not parts:
            continue
        lasts = inflections(parts[-1]) if inflect else {parts[-1]}
        out += [tuple(words(" ".join([*parts[:-1], f]))) for f in lasts]
    return out


class Entities:
    """Configured entities, for finding which one a speaker phrase names."""

    def __init__(self, entities: Mapping[str, Any] | None):
        self.display: dict[str, str] = {}
        self._aliases: list[_Alias] = []
        for key, e in (entities or {}).items():
            aliases = list(getattr(e, "aliases", ()) or ())
            self.display[key] = getattr(e, "display", None) or (aliases[0] if aliases else key)
            forms: list[tuple[str, ...]] = []
            for a in aliases:
                forms += [f for f in _alias_forms(a, bool(getattr(e, "inflect", False))) if f]
            self._aliases.append(_Alias(key, tuple(forms)))
        # Alias forms by their first word: a phrase is looked up word by word, not form by form.
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for al in self._aliases:
            for form in al.forms:
                self._by_first.setdefault(form[0], []).append((form, al.entity))

    def find(self, phrase: str) -> str | None:
        """The entity whose alias occurs last in ``phrase`` (the head of "President of
        Kazakhstan Tokayev" is its end), or None."""
        hit = self.find_words(phrase)
        return hit[0] if hit else None

    def find_words(self, phrase: str) -> tuple[str, list[str]] | None:
        """That entity and the words of the phrase its alias covers."""
        ws = words(phrase)
        best: tuple[int, int, str] | None = None
        for i, w in enumerate(ws):
            for form, entity in self._by_first.get(w, ()):
                n = len(form)
                if tuple(ws[i:i + n]) == form and (best is None or i + n > best[0]):
                    best = (i + n, i, entity)
        return (best[2], ws[best[1]:best[0]]) if best else None


_NO_ENTITIES = Entities(None)


def make_speaker(written: str, entities: Entities | None = None) -> Speaker | None:
    """A Speaker for an attributed phrase, or None when it is no speaker (a common noun)."""
    written = written.strip().strip(",;:.!?").strip()
    _LAST_USED[0] = written
    role, name, kind = classify(written)
    if kind == "person" and not _HAN.search(written):
        written = _LAST_USED[0] or written
    if kind in ("common", "none"):
        return None
    ents = entities or _NO_ENTITIES
    key = ents.find(name or written) if kind in ("person", "country") else None
    if kind == "body":
        # A body is an entity when the alias names the body ("Foreign Ministry"), not when it is
        # only the country in "National Bank of Kazakhstan".
        hit = ents.find_words(written)
        if hit and (any(_BODY.fullmatch(w) for w in hit[1]) or len(hit[1]) == len(words(written))):
            key = hit[0]
    if key is None and kind == "role":
        key = None
    shown = name or written
    if key is not None:
        head = ents.display.get(key, shown)
        role_w = role if kind == "person" else ""
        display = f"{head} — {role_w}" if role_w else head
    else:
        display = shown
    return Speaker(written=written, name=name or written, role=role, entity=key, display=display)


# --- finding the speaker of a statement -----------------------------------------------------

@dataclass(frozen=True)
class _Found:
    pos: int
    phrase: str
    kind: str  # person, body, role, country, pronoun
    how: str


@lru_cache(maxsize=1)
def _gates() -> dict[str, Any]:
    """Per language, one search for any of its speech words: a sentence without them skips
    that language's patterns (most sentences of an article hold none).

    Each pattern has its speech verb (or "according to") start a word, so the gate asks for one
    starting a word: unbounded, German "so" and French "dit" opened those languages' patterns
    on nearly every English text ("also", "credit"). A suffix that follows the name (Turkish
    "'e göre"), the French "-t-il" and Chinese stay unbounded."""
    out = {}
    for lang in LANGS:
        if lang.code == "zh":
            out[lang.code] = _cached(_alt([lang.verbs, lang.according]))
            continue
        attached = _alt([lang.according_after.strip("\\s+"), "-t-il|-t-elle" if lang.code == "fr" else ""])
        starts_word = _alt([lang.verbs, lang.according, lang.quoting, lang.according_pronoun])
        out[lang.code] = _cached(rf"(?i:(?<!\w)(?:{starts_word})" + (f"|{attached})" if attached else ")"))
    return out


def _recurs_as_name(text: str, word: str) -> bool:
    """Whether ``word`` also stands capitalised inside a sentence somewhere in ``text`` (names
    do; a common noun opening a sentence, "Tarafların", "Синоптиктердің", does not)."""
    stem = re.escape(word[:max(4, len(word) - 3)])
    return re.search(rf"(?<=[\p{{Ll}}\d,;:)»”]\s+){stem}", text) is not None


_PRESENT: dict[str, frozenset[str]] = {}  # by sentence: quoting and the gate look at the same ones


def _present(seg: str) -> frozenset[str]:
    """The languages whose speech words ``seg`` holds (``_gates``): nine searches of a sentence
    that quoting, resolution and the gate's ``body_statements`` each ask about again."""
    hit = _PRESENT.get(seg)
    if hit is None:
        if len(_PRESENT) >= 4096:
            _PRESENT.clear()
        hit = _PRESENT[seg] = frozenset(code for code, rx in _gates().items() if rx.search(seg))
    return hit


_LAST_WORD = re.compile(r"\w+\W*$")


def _titled_verb(seg: str, m: Any, kind: str) -> bool:
    """Whether the speech verb that ends a match after its speaker phrase (the "in" and "after"
    patterns: "Tokayev said", "..." Tokayev said) is capitalised, not all capitals ("States" of
    "United States", which the verb "states" matched)."""
    if kind not in ("in", "after") or m.end() <= m.end("who"):
        return False
    w = _LAST_WORD.search(seg, m.end("who"), m.end())
    word = w.group(0).rstrip() if w is not None else ""
    return word[:1].isupper() and not word.isupper()


def _candidates(text: str, start: int, end: int, kinds: Sequence[str],
                known: Any = None, headline: bool = False) -> list[_Found]:
    """Speaker phrases in text[start:end] by the patterns of ``kinds``. With ``known`` (phrase
    -> entity or None), a lone capitalised word opening the sentence counts as a name only when
    it is an entity or recurs capitalised inside a sentence.

    In running text (not a ``headline``) a speech verb after the speaker is written in lower
    case: a capitalised one is part of a name. The verbs match in any case for headlines
    ("Tokayev Says Kazakhstan Is Not a Mediator"), and so "United States" was speaker "United"
    saying "States" in the body of every article about its policy."""
    out: list[_Found] = []
    seg = text[start:end]
    present = _present(seg)
    for p in _patterns(present):
        if p.kind not in kinds or (p.lang and p.lang not in present):
            continue
        for m in p.finditer(seg):
            if not headline and _titled_verb(seg, m, p.kind):
                continue
            if "anaphor" in m.re.groupindex and m.group("anaphor") is not None:
                out.append(_Found(start + m.start("anaphor"), m.group("anaphor"), "pronoun", p.kind))
                continue
            if p.kind == "in" and p.lang == "de" and seg[m.end("who"):m.end()].lstrip().startswith(",") and \
                    _named_after(seg, m.end()):
                continue  # "Ein Vermittler brauche Einfluss auf beide Parteien, sagt die Politologin X": X
            phrase = m.group("who").strip()
            _, name, kind = classify(phrase)
            if kind == "role" or (kind == "body" and any(_full(_ROLE, w) for w in phrase.split())):
                # "the minister, Aigerim Sadykova"; "il segretario del sindacato, Tomás Ferro" (a
                # role of a body: the name after it speaks, not the union)
                ext = _ROLE_TAIL.match(seg, m.end("who"))
                if ext and classify(phrase + ext.group(0).replace(",", ""))[2] == "person":
                    phrase, kind = phrase + ext.group(0).replace(",", ""), "person"
            if kind in ("role", "person") and classify(phrase)[0]:
                app = _APPOSITION.match(seg, m.end("who"))
                if app and classify(app.group(1))[2] == "person":
                    phrase, kind = phrase + app.group(0), "person"
            at = m.start("who")
            if m.start() == m.start("who") and (kind == "role" or _apposed(seg, m, phrase, kind)):
                # The name before the role, in apposition: "Sela Varga, the interior minister, said"
                # (not when the pattern opened with words of its own: "Переговоры, как считает
                # министр, ...", "Talks, said the minister, ...").
                named = _NAME_BEFORE_ROLE.search(seg, 0, at)
                if named and classify(named.group(1))[2] == "person":
                    phrase, kind, at = named.group(1), "person", named.start(1)
            if kind in ("none", "common"):
                continue
            if (known is not None and kind == "person" and " " not in phrase and
                    not seg[:m.start("who")].strip(" «\"“„'(—–-") and not known(phrase) and
                    not _recurs_as_name(text, phrase)):
                continue
            out.append(_Found(start + at, phrase, kind, p.kind))
    return out


# After a bare role: its lowercase complement and the name ("президент республики Касым-Жомарт
# Токаев"), or the name in apposition ("la ministra de Transporte, Aigerim Sadykova").
_ROLE_TAIL = re.compile(rf"(?:(?:\s+[\p{{Ll}}\-]+){{1,2}},?\s+|,\s+){_WORD}(?:\s+{_WORD}){{0,2}}")
_APPOSITION = re.compile(rf",\s+({_WORD}(?:\s+{_WORD}){{0,2}})(?=\s*[.,;!?]|\s*$)")
# Before a bare role: the name it stands in apposition to, and the role's lowercase words
# ("Sela Varga, the interior minister, said"; "Oskar Lind, chief economist at ..., said" has the
# name as the who already).
_NAME_BEFORE_ROLE = re.compile(rf"(?<![\p{{L}}\p{{M}}])({_WORD}(?:\s+{_WORD}){{0,2}}),\s+(?:[\p{{Ll}}\-]+\s+){{0,8}}$")
_RANK = {"person": 0, "body": 1, "role": 2, "pronoun": 2, "country": 3}
_LOWER_RUN = re.compile(r"[\p{Ll}\-]+(?:\s+[\p{Ll}\-]+)*")


# Between a German speech verb and its subject: an article (not "dem", "den": whom it was said
# to) and a lower case role ("sagt die Politologin").
_BEFORE_NAME = re.compile(r"\s+(?:(?:der|die|das|ein|eine)\s+)?(?:\p{Ll}+\s+)?")


def _named_after(seg: str, at: int) -> bool:
    """Whether the subject follows the German speech verb ending at ``at`` ("Ein Vermittler
    brauche Einfluss auf beide Parteien, sagt die Politologin Y": Y, not "Parteien", which the
    pattern "X, sagt" found: German capitalises every noun)."""
    gap = _BEFORE_NAME.match(seg, at)
    if gap is None or any(w not in ("der", "die", "das", "ein", "eine") and not _full(_ROLE, w)
                          for w in seg[gap.start():gap.end()].split()):
        return False
    m = _who_rx().rx.match(seg, gap.end())
    return m is not None and classify(m.group(0))[2] in ("person", "role", "body")


def _apposed(seg: str, m: Any, phrase: str, kind: str) -> bool:
    """Whether the speaker phrase closes an apposition to a name before it: a comma between
    it and the verb, and it begins with a role in lower case ("Zippy Duvall, the president of
    the American Farm Bureau, said": not a person named "Farm Bureau"; "John Williams, the
    president of the Federal Reserve Bank of New York, said": not the bank) or is a body after lower
    case words naming a role ("Joshua Apte, a professor of engineering at the University of
    Texas, explained": not the university; "Kym Lino, a spokesperson for Instagram, confirmed":
    not Instagram). A role it leaves out is ``kind`` role already."""
    if kind not in ("person", "body") or not seg[m.end("who"):m.end()].lstrip().startswith(","):
        return False
    first = _LOWER_RUN.match(phrase)
    if first is not None and any(_full(_ROLE, w) for w in first.group(0).split()):
        return True
    before = _NAME_BEFORE_ROLE.search(seg, 0, m.start("who"))
    return before is not None and any(_full(_ROLE, w) for w in seg[before.end(1):m.start("who")].split())


@lru_cache(maxsize=1)
def _verb_alone() -> Any:
    """At a quotation's closing mark: a speech verb alone, ending the sentence ("», dijo.",
    "” dedi."), in lower case (running text). Tried where a quotation closes (``Attributor._find``)
    and in a sentence holding a double closing mark (``_verb_alone_in``)."""
    verbs = _alt(lang.verbs for lang in LANGS if lang.code != "zh")
    return _cached(rf"[{_DOUBLE_CLOSE}]\s*,?\s*(?:{_DASH}+\s*)?({verbs})(?=\s*[.!?]?\s*(?:$|\n))")


# The closing marks of quotations a verb alone can close: not ’ and ‘, which are apostrophes too.
_DOUBLE_CLOSE = "\"”»“」』"


def _subject_of_quotation(text: str, sa: int, qa: int) -> _Found | None:
    """The speaker phrase a sentence opens with when the quotation follows it, a comma between
    ("Tokayev, “… . …” dedi.": the verb-final pattern reads no further than the quotation's first
    full stop)."""
    a = sa + len(text[sa:qa]) - len(text[sa:qa].lstrip(" \t\n«\"“„'(—–-"))
    m = _who_rx().rx.match(text, a, qa)
    if m is None or text[m.end():qa].strip() not in ("", ","):
        return None
    kind = classify(m.group(0))[2]
    return _Found(a, m.group(0), kind, "before") if kind in ("person", "body", "role") else None


def _verb_alone_in(text: str, a: int, b: int) -> _Found | None:
    """A quotation closed by a speech verb alone in text[a:b] (``_verb_alone``), as a pronoun."""
    seg = text[a:b]
    if not any(mark in seg for mark in _DOUBLE_CLOSE):  # most sentences: no quotation closes in them
        return None
    m = _verb_alone().search(text, a, b)
    return None if m is None else _Found(m.start(1), "", "pronoun", "after")


def _best(found: list[_Found]) -> _Found | None:
    return min(found, key=lambda f: (_RANK[f.kind], f.pos)) if found else None


_OPENERS = "«„「『"
_CLOSERS = "»”」』"
_QUOTE_MARK = re.compile(f"[\"“{_OPENERS}{_CLOSERS}]")


def quotations(text: str, ps: int, pe: int) -> list[tuple[int, int]]:
    """Outermost quotations (offset of the opening mark, offset of the closing mark) in
    text[ps:pe], nested quotes inside them included: « „ “ » in Russian, „ “ in German, “ ” and
    straight quotes in English (opening when after a space or the start, else closing). An
    unclosed quotation runs to the end of the paragraph (the newswire habit for multi-paragraph
    quotes)."""
    stack: list[str] = []
    out: list[tuple[int, int]] = []
    start = ps
    for m in _QUOTE_MARK.finditer(text, ps, pe):  # any other character changes nothing below
        i, ch = m.start(), m.group()
        prev = text[i - 1] if i > ps else " "
        was_empty = not stack
        if ch == "\"":
            if prev.isspace() or prev in "([{—–-:" + _OPENERS + "“" or i == ps:
                stack.append(ch)
            elif stack and stack[-1] == "\"":
                stack.pop()
        elif ch in _OPENERS or (ch == "“" and not (stack and stack[-1] == "„")):
            stack.append(ch)
        elif (ch in _CLOSERS or ch == "“") and stack:
            stack.pop()
        if was_empty and stack:
            start = i
        elif stack == [] and not was_empty:
            out.append((start, i))
    if stack:
        out.append((start, pe))
    return out


def _quote_span(text: str, ps: int, pe: int, start: int, end: int) -> tuple[int, int] | None:
    """The quotation the statement at [start, end) sits in (or mostly is), within its paragraph."""
    for a, b in quotations(text, ps, pe):
        if a <= start + 2 and b > start + 2:
            return a, b
        if a >= start and b <= end and b - a > 0.5 * (end - start):
            return a, b
    return None


# German's subjunctive (Konjunktiv I) of reported speech, third person: forms no indicative
# shares ("sei", "könne", "seien"), and "habe"/"werde" unless after "ich" (the indicative's first
# person); with a word only German writes, so that Italian's "sei" (six, you are) is not one. Not
# in an indirect question ("gefragt, ob Astana ... organisieren könne": the reporter's words).
_KONJUNKTIV = re.compile(r"(?<!\w)(?:sei|seien|könne|müsse|wolle|solle|dürfe|möge|wisse|gebe|"
                         r"(?<!\bich\s)(?:habe|werde))(?!\w)")  # lower case: never a sentence's first word
# The subjunctive II that stands in for it where the first is the indicative ("sie würden", for
# "sie werden"): also a plain conditional, so it only carries reported speech on from a sentence
# before, never starts it.
_KONJUNKTIV_II = re.compile(r"(?<!\w)(?:würden?|hätten?|wären?|könnten|müssten)(?!\w)", re.IGNORECASE)
_GERMAN = re.compile(r"(?<!\w)(?:der|die|das|und|nicht|sich|auch|mit|zu|den|dem|ein|eine|von|auf|für|im|"
                     r"über|bei|nach|aus|noch|schon|jedoch)(?!\w)", re.IGNORECASE)
_QUESTION = re.compile(r"\W*(?:ob|wie|wer|was|warum|wann|wo|weshalb|wieso)(?!\w)", re.IGNORECASE)
REPORTED_RUN = 6  # sentences of reported speech followed back to the one that names its speaker


def _reported_speech(text: str, start: int, end: int, going_on: bool = False) -> bool:
    """Whether text[start:end] is German reported speech: a subjunctive of ``_KONJUNKTIV``
    outside an indirect question, or (``going_on``: between it and the sentence naming its
    speaker) of ``_KONJUNKTIV_II`` (the sentence it goes on to was German already)."""
    for m in _KONJUNKTIV.finditer(text, start, end):
        clause = max(text.rfind(c, start, m.start()) for c in ",;:–—(")
        if not _QUESTION.match(text, clause + 1 if clause >= 0 else start, m.start()):
            return going_on or _GERMAN.search(text, start, end) is not None
    return going_on and _KONJUNKTIV_II.search(text, start, end) is not None


# Opinion pieces: what no one else is named for is the author's own view. An op-ed, a column
# or an editorial is known by its address or its headline's label (not "analysis": reporting).
_OPINION_PATH = re.compile(r"/(?:opinions?|op-?eds?|commentary|comment|commentisfree|columns?|columnists?|"
                           r"editorials?|viewpoints?|meinung|kommentare?|gastbeitrag|standpunkt|tribunes?|"
                           r"chroniques?|opini[oó]n|tribuna|columna|mnenie|kolonka|dumka|yorum|kose-yazilari)"
                           r"(?=[/_-]|$)", re.IGNORECASE)
_OPINION_LABEL = re.compile(r"^\W*(?:opinion|op-?ed|commentary|comment|column|editorial|viewpoint|meinung|"
                            r"kommentar|gastbeitrag|standpunkt|tribune|chronique|opinión|tribuna|columna|"
                            r"мнение|колонка|думка|görüş|yorum)\s*[:|—–]", re.IGNORECASE)
# A byline opening the body: "By Marek Halloran", "Von Anna Berg", "Par Jean Morel".
_BYLINE = re.compile(rf"\A\s*(?i:by|von|par|por|di)\s+({_WORD}(?:\s+{_WORD}){{1,3}})\s*(?:\n|\Z)")


def opinion_voice(title: str, body: str, url: str = "", author: str = "") -> str:
    """The author of an opinion piece (its byline, else the page's author), or "" for any
    other article: the speaker of its statements no one else is named for."""
    from urllib.parse import urlsplit

    if not (_OPINION_LABEL.match(title or "") or _OPINION_PATH.search(urlsplit(url or "").path)):
        return ""
    byline = _BYLINE.match(body or "")
    name = byline.group(1) if byline else (author or "").split(";")[0].split(",")[0]
    return name.strip()


# Plural pronouns (and their forms in "according to them", "по их словам", "selon eux").
_PLURAL = re.compile(r"(?<!\w)(?:they|them|their|они|их|вони|їхніми|їхню|ils|elles|eux|leur|ellos|ellas|ihnen|"
                     r"onlar|onlara|олар|олардың|他们|loro|eles|elas|oni|one|nich)(?!\w)", re.IGNORECASE)


class Attributor:
    """Speaker attribution over one text (title or body), with resolution state."""

    def __init__(self, text: str, entities: Entities | None = None, title: str = "", headline: bool = False,
                 voice: str = ""):
        self.text = text
        self.title = title
        self.voice = voice  # an opinion piece's author (``opinion_voice``): who speaks where no one else does
        self.headline = headline  # ``text`` is a headline, not running text (``_candidates``)
        self.entities = entities or _NO_ENTITIES
        # The text's speakers (``all_speakers``), found sentence by sentence as far as asked:
        # resolving a statement needs only those before it (or the first person), and finding
        # them is most of attribution's cost.
        self._sentences: list[tuple[int, int]] | None = None
        self._found: list[_Found] = []
        self._read = 0  # sentences looked at

    def all_speakers(self) -> list[_Found]:
        """Every speaker phrase of the text, by position."""
        return self._speakers_before(len(self.text) + 1)

    def _speakers_before(self, pos: int) -> list[_Found]:
        """The speakers found so far, by position: at least every one before ``pos`` (a
        sentence's speakers stand inside it, so those of the sentences starting before it)."""
        sents = self._split()
        while self._read < len(sents) and sents[self._read][0] < pos:
            self._read_next()
        return self._found

    def first_person(self) -> _Found | None:
        """The first person the text names as a speaker."""
        sents, i = self._split(), 0
        while True:
            for x in self._found[i:]:
                if x.kind == "person":
                    return x
            i = len(self._found)
            if self._read == len(sents):
                return None
            self._read_next()

    def _split(self) -> list[tuple[int, int]]:
        if self._sentences is None:
            self._sentences = split_sentences(self.text)
        return self._sentences

    def _read_next(self) -> None:
        """The speakers of the next sentence not looked at yet."""
        a, b = self._split()[self._read]
        self._read += 1
        found = sorted(_candidates(self.text, a, b, ("after", "before", "in", "final", "next"),
                                   self.entities.find if self.entities.display else None, self.headline),
                       key=lambda f: f.pos)
        if not found and not self.headline:
            alone = _verb_alone_in(self.text, a, b)  # "«…», dijo.": whoever spoke last
            if alone is not None:
                found = [alone]
        self._found += found

    def _resolve(self, f: _Found, at: int) -> _Found | None:
        if f.kind not in ("pronoun", "role"):
            return f
        before = [x for x in self._speakers_before(at) if x.pos < at and x.kind == "person"]
        if f.kind == "role":
            # "the minister" is the minister named before, if no one spoke since.
            named = self._role_mention(f.phrase, at)
            if named is not None and (not before or named.pos > before[-1].pos):
                return named
        if before:
            return before[-1]
        if f.kind == "role":
            return self.first_person() or f
        # No one spoke before: the person last named with a role ("Le ministre Jean Morel a pris
        # la parole à Lyon. Selon lui, ..."), a name alone being no surer a person than a company;
        # not for "they" (a team, the officials), which a person named before seldom is.
        if _PLURAL.search(f.phrase):
            return None
        return self._person_named_before(at)

    def _person_named_before(self, at: int) -> _Found | None:
        """The last "<role> <Name>" (or "<Name>, <role>") mention before ``at``."""
        return next(reversed(list(self._named_with_role(0, at))), None)

    def _named_with_role(self, a: int, b: int) -> Iterator[_Found]:
        """The people text[a:b] names with a role ("Le ministre Jean Morel"), in order: a person
        surely, where a name alone may be a company."""
        for m in _who_rx().finditer(self.text[a:b]):
            role, _, kind = classify(m.group(0))
            if kind == "person" and role and _ROLE.search(role):
                yield _Found(a + m.start(), m.group(0), "person", "named")

    def _role_mention(self, role: str, at: int) -> _Found | None:
        """The last "<role> <Name>" mention before ``at`` sharing a role word with ``role``
        ("Министр транспорта Айгерим Садыкова ... — сообщила министр")."""
        keys = {fold(w)[:5] for w in role.split() if len(w) > 3 and _full(_ROLE, w)}
        if not keys:
            return None
        last: _Found | None = None
        for m in _who_rx().finditer(self.text[:at]):
            phrase = m.group(0)
            r, _, kind = classify(phrase)
            if kind == "role":
                ext = _ROLE_TAIL.match(self.text, m.end())
                if ext and ext.end() <= at:
                    phrase = phrase + ext.group(0).replace(",", "")
                    r, _, kind = classify(phrase)
            if kind == "person" and keys & {fold(w)[:5] for w in r.split()}:
                last = _Found(m.start(), phrase, "person", "named")
        return last

    def _paragraph(self, start: int, end: int) -> tuple[int, int]:
        ps = self.text.rfind("\n", 0, start) + 1
        pe = self.text.find("\n", end)
        return ps, len(self.text) if pe < 0 else pe

    def _person_near(self, start: int, end: int) -> _Found | None:
        """A person named in the sentence or its paragraph (for a country subject)."""
        ps, pe = self._paragraph(start, end)
        inside = [f for f in self._speakers_before(pe) if ps <= f.pos < pe and f.kind == "person"]
        if inside:
            return min(inside, key=lambda f: abs(f.pos - start))
        return next(self._named_with_role(ps, pe), None)

    def find(self, start: int, end: int) -> Speaker | None:
        """The speaker of the statement text[start:end]: one sentence, or a run of them (an
        adjacent pair that holds more of a rule's clauses than either, the sentences a NEAR
        spans).

        Each sentence of a run is attributed as if it were quoted alone, and the run's speaker
        is the best of theirs by the rank a sentence's own speakers have (``_RANK``: a person
        before a body, before a role or a country; the earlier sentence's on a tie). So a
        sentence keeps its speaker whichever rule quotes it, with its neighbour or without, and
        "Kazakhstan is not a mediator. This was announced by Tokayev." is Tokayev's: the lead-in
        of the second sentence names the first one's speaker (read over the whole run, the
        lead-in opened no sentence after it and the pair had no speaker). Where no sentence is
        attributed, an opinion piece's author; where one is, to someone it cannot name ("they
        said", no one named before), not the author."""
        said = [self._speaker(a, b, 0) for a, b in self._sentences_in(start, end)]
        named = [f for _, f in said if f is not None]
        if named:
            return make_speaker(min(named, key=lambda f: _RANK[f.kind]).phrase, self.entities)
        return None if any(attributed for attributed, _ in said) else self._author()

    def _sentences_in(self, start: int, end: int) -> list[tuple[int, int]]:
        """text[start:end] cut at the text's sentence boundaries (itself when inside one); a
        bisection, not a walk over the text's sentences: a re-alert attributes every sentence."""
        sents = self._split()
        i = max(bisect_right(sents, (start, len(self.text) + 1)) - 1, 0)  # the sentence start is in
        run = []
        while i < len(sents) and sents[i][0] < end:
            a, b = sents[i]
            if b > start:
                run.append((max(a, start), min(b, end)))
            i += 1
        return run if len(run) > 1 else [(start, end)]

    def _speaker(self, start: int, end: int, depth: int) -> tuple[bool, _Found | None]:
        """Whether one sentence is attributed, and to whom, resolved (None: to someone it
        cannot name); ``depth``: sentences followed back by ``_reported_on``."""
        f = self._find(start, end)
        if f is None:
            return self._reported_on(start, end, depth)
        f2 = self._resolve(f, f.pos if f.pos < start else start)
        if f2 is not None and f2.kind == "country":
            f2 = self._person_near(start, end) or f2
        return True, f2

    def _author(self) -> Speaker | None:
        """The opinion piece's author, shown as such ("Marek Halloran (opinion)")."""
        if not self.voice:
            return None
        sp = make_speaker(self.voice, self.entities) or Speaker(self.voice, self.voice)
        return replace(sp, role="opinion", display=f"{sp} (opinion)")

    def _reported_on(self, start: int, end: int, depth: int) -> tuple[bool, _Found | None]:
        """German reported speech goes on sentence after sentence in the subjunctive, without
        a speech verb of its own ("Tokajew sagte, Kasachstan sei kein Vermittler. Der Konflikt sei
        äußerst komplex."): such a sentence is the words of the previous sentence's speaker,
        itself found the same way (up to ``REPORTED_RUN`` sentences back)."""
        if depth >= REPORTED_RUN or not _reported_speech(self.text, start, end, going_on=depth > 0):
            return False, None
        sents = self._split()
        i = next((k for k, (a, b) in enumerate(sents) if a <= start < b), None)
        if not i:  # the first sentence, or none: nothing it could continue
            return False, None
        a, b = sents[i - 1]
        return self._speaker(a, b, depth + 1)

    def _find(self, start: int, end: int) -> _Found | None:
        text = self.text
        ps, pe = self._paragraph(start, end)
        q = _quote_span(text, ps, pe, start, end)
        if q is not None:
            qa, qb = q
            after = [f for f in _candidates(text, qb, min(pe, qb + 200), ("after",), headline=self.headline)
                     if f.pos <= qb + 120]
            after = [f for f in after if not _SENTENCE_END.search(text, qb + 1, f.pos)]
            if after:
                return min(after, key=lambda f: f.pos)
            before = [f for f in _candidates(text, ps, qa + 1, ("before",), headline=self.headline)]
            if before:
                return max(before, key=lambda f: f.pos)
            verb = None if self.headline else _verb_alone().match(text, qb)
            if verb is not None:
                # "«…», dijo." / "“…” dedi.": the subject is not written. It is the one the
                # sentence opens with ("Selim Kara, “…” dedi."), else whoever spoke last ("Ana
                # Ruiz advirtió que … «…», dijo."), as for a pronoun.
                sa = max((a for a, _ in self._split() if a <= qa), default=ps)
                opening = [f for f in _candidates(text, sa, verb.end(), ("in", "final"), headline=self.headline)
                           if f.pos < qa]
                return _best(opening) or _subject_of_quotation(text, sa, qa) or \
                    _Found(verb.start(1), "", "pronoun", "after")
        found = _candidates(text, start, end, ("after", "in", "final"),
                            self.entities.find if self.entities.display else None, self.headline)
        if found:
            return _best(found)
        found = _candidates(text, start, end, ("head", "tail"), headline=self.headline)
        found = [f for f in found if self._confirmed(f)]
        if found:
            return _best(found)
        nxt = split_sentences(text[end:pe])
        if nxt:
            a, b = nxt[0]
            found = _candidates(text, end + a, end + b, ("next",), headline=self.headline)
            if found:
                return _best(found)
        return None

    def _confirmed(self, f: _Found) -> bool:
        """A headline's "X: ..." names a speaker, not a topic ("Halvik quake: 14 dead"): X has a
        role or body word, is a configured entity, or speaks elsewhere in the article."""
        role, name, kind = classify(f.phrase)
        if kind in ("role", "body", "pronoun"):
            return True
        if self.entities.find(f.phrase):
            return True
        last = fold(name.split()[-1]) if name.split() else ""
        if len(last) < 3:
            return False
        stem = last[:max(3, len(last) - 2)]
        pool = [x for x in self.all_speakers() if x.kind == "person"]
        if self.title and self.text is not self.title:
            pool += Attributor(self.title, self.entities, headline=True).all_speakers()
        has_role = any(len(w) > 3 and _full(_ROLE, w) for w in role.split())
        return any(stem in fold(x.phrase) for x in pool) or (has_role and kind == "person")


def attribute(title: str, body: str, field: str, start: int, end: int,
              entities: Entities | None = None, voice: str = "") -> Speaker | None:
    """The speaker of the statement at [start, end) of the title or body.

    For the title, the headline conventions apply and a bare role resolves to the first named
    speaker of the body ("Президент: ..." over a body naming Тоқаев).
    """
    if field == "title":
        att = Attributor(title, entities, headline=True, voice=voice)
        f = att._find(start, end)
        if f is None:
            return att._author()
        if f.kind in ("role", "pronoun"):
            person = Attributor(body, entities).first_person()
            if person is not None:
                return make_speaker(person.phrase, entities)
            return make_speaker(f.phrase, entities) if f.kind == "role" else None
        if f.how in ("head", "tail") and not _headline_ok(f, body, entities):
            return None
        return make_speaker(f.phrase, entities)
    return Attributor(body, entities, title=title, voice=voice).find(start, end)


def _headline_ok(f: _Found, body: str, entities: Entities | None) -> bool:
    att = Attributor(body, entities)
    return att._confirmed(f)
