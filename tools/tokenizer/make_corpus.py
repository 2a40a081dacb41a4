#!/usr/bin/env python3
"""Write the tokenizer parity corpus: Tests/Fixtures/tokenizer/corpus.jsonl.

Format: UTF-8, one test string per line, each line is a single JSON string literal
(so newlines, tabs, \r etc. inside a test string appear escaped). Non-ASCII text is written
as raw UTF-8, except that the writer additionally escapes, as \\uXXXX, every character that
some line-splitting APIs treat as a line break or that is easy to lose in editors:
C0/C1 controls, DEL, U+2028, U+2029, U+FEFF, U+FFFE, U+FFFF (JSON's own rules already escape
C0, '"' and '\\'). The only 0x0A bytes in the file are line terminators; there are no 0x0D bytes.
Decode each line with any JSON parser (it is a top-level string fragment).

A sidecar file corpus_sections.json lists, for each section, the half-open range of line
indices (0-based) it occupies, so that a failing line can be attributed to a topic.

The output is deterministic: no network, no clock, random choices come from random.Random
instances with fixed seeds (random.Random's choice/randint/shuffle are stable across
CPython 3.x versions).

Usage: python3 tools/tokenizer/make_corpus.py [--out DIR]   (default Tests/Fixtures/tokenizer)
"""
import argparse
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# ----------------------------------------------------------------------------------------------
# Raw material
# ----------------------------------------------------------------------------------------------

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "It was the best of times, it was the worst of times.",
    "She sells sea shells by the sea shore, and the shells she sells are surely seashells.",
    "In 1969, humans first walked on the Moon; the mission was called Apollo 11.",
    "Please don't forget to bring your umbrella — it's going to rain later today.",
    "We're going to the market, aren't we? I'd like some apples, pears and plums.",
    "The committee's decision was final: no further appeals would be heard.",
    "He said, \"I can't believe it's already November!\"",
    "Tokenization splits text into pieces that a model can look up in its vocabulary.",
    "A byte-level BPE never produces an unknown token, because every byte has an id.",
    "Machine learning models are trained on large datasets of text and images.",
    "The museum's collection includes paintings, sculptures, and rare manuscripts.",
    "After the storm, the streets were flooded and the power was out for two days.",
    "Why do we park on driveways and drive on parkways?",
    "Knowledge is power, but enthusiasm pulls the switch.",
    "The recipe calls for two cups of flour, one egg, and a pinch of salt.",
    "They'll arrive at 7:30 p.m. unless the train is delayed again.",
    "You've got to be kidding me; that's the third time this week!",
    "I'm not sure whether the results are statistically significant.",
    "Our team shipped version 2.0 of the app on Tuesday morning.",
    "Astronomers observed a supernova in a galaxy 50 million light-years away.",
    "The old lighthouse keeper climbed the spiral staircase every evening at dusk.",
    "Dr. Smith, Mr. Jones and Mrs. O'Brien met at St. Mary's Hospital.",
    "E.g., i.e., etc., vs. and a.k.a. are common abbreviations in English prose.",
    "Hyphenated words like state-of-the-art and well-known are everywhere.",
    "ALL CAPS TEXT SHOULD STILL BE TOKENIZED CORRECTLY, SHOULDN'T IT?",
    "mIxEd CaSe TeXt iS aLsO a ThInG pEoPlE wRiTe OnLiNe.",
    "The children's playground is next to the library, across from the bakery.",
    "To be, or not to be: that is the question.",
    "All that glitters is not gold; all who wander are not lost.",
    "The Industrial Revolution transformed economies that had been based on agriculture.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The river meandered through the valley, reflecting the orange glow of sunset.",
    "Supercalifragilisticexpialidocious is a very long word; so is antidisestablishmentarianism.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a lung disease caused by fine ash.",
    "Rock 'n' roll, ma'am, o'clock, y'all, and 'tis are unusual apostrophe words.",
    "The 'quoted' word and the \"double quoted\" word differ only in their quotes.",
    "She whispered: 'it's fine, we'll manage' — but nobody believed her.",
    "Open the door, then turn left; the office is the second room on the right.",
    "Can you believe the price of coffee these days?!",
    "Well... I guess that's one way to look at it.",
    "(Parentheses), [brackets], {braces} and <angle brackets> all appear in text.",
    "First, preheat the oven. Second, mix the batter. Third, bake for 25 minutes.",
    "The weather forecast predicts sunny skies with a high of 24°C.",
    "Her résumé listed experience at a café in Zürich and a naïve art gallery.",
    "The façade of the château was restored in the style of the belle époque.",
    "Jalapeño, piñata, and señor are Spanish loanwords with an ñ.",
    "Smörgåsbord, fjörd and Ångström come from Scandinavian languages.",
]

PROMPT_SUBJECTS = [
    "a red fox", "an astronaut", "a lighthouse on a cliff", "a bowl of ramen", "a cyberpunk street",
    "a medieval castle", "a golden retriever puppy", "an elderly fisherman", "a koi pond",
    "a futuristic city skyline", "a steaming cup of coffee", "a vintage motorcycle", "a snow leopard",
    "a cherry blossom tree", "a library full of floating books", "a samurai in the rain",
    "a tiny robot watering plants", "a desert caravan", "a glass terrarium", "a jellyfish",
    "a young woman reading by a window", "a bustling night market", "a wooden sailboat",
    "a portrait of a cat wearing a crown", "an ancient temple in the jungle", "a neon-lit diner",
    "a mountain lake at dawn", "a dragon made of clouds", "a steampunk airship", "a field of sunflowers",
    "a Chinese courtyard garden in spring", "a bowl of fresh strawberries", "a polar bear on an ice floe",
    "the interior of a cozy cabin", "a girl holding a paper lantern", "a chess game in progress",
]
PROMPT_STYLES = [
    "photorealistic", "oil painting", "watercolor", "studio ghibli style", "cinematic still",
    "35mm film photograph", "ukiyo-e woodblock print", "3D render", "isometric illustration",
    "pencil sketch", "pixel art", "low-poly", "art nouveau poster", "impressionist", "hyperrealistic",
    "anime key visual", "concept art", "vaporwave", "double exposure", "macro photography",
    "ink wash painting", "claymation", "tilt-shift photo", "infrared photograph", "cel-shaded",
]
PROMPT_DETAILS = [
    "golden hour lighting", "volumetric fog", "soft bokeh background", "dramatic rim light",
    "highly detailed", "8k resolution", "sharp focus", "shallow depth of field", "wide-angle lens",
    "85mm f/1.4", "ISO 100", "trending on artstation", "intricate details", "muted color palette",
    "vibrant colors", "overcast sky", "long exposure", "reflections on wet pavement",
    "symmetrical composition", "rule of thirds", "centered subject", "backlit", "morning mist",
    "ray tracing", "subsurface scattering", "film grain", "high contrast", "pastel tones",
    "hand-drawn textures", "no text, no watermark", "aspect ratio 16:9", "--ar 3:2",
    "masterpiece, best quality", "cinematic lighting, moody atmosphere", "4K UHD, HDR",
    "photographed by a professional photographer", "award-winning photo", "Canon EOS R5",
    "soft diffused light from the left", "light leaks", "chromatic aberration", "lens flare",
]
PROMPT_TEXT_IN_IMAGE = [
    'a neon sign that says "OPEN 24/7"', 'a chalkboard menu reading "Soup of the Day: Tomato"',
    'a poster with the title "THE LAST SUMMER"', 'a coffee cup with the word "Hello" written in latte art',
    'a book cover titled "Gardens of Tomorrow"', 'a street sign reading "Main St."',
    'a birthday cake with "Happy 30th, Anna!" in icing', "a storefront with the sign 'Joe's Bakery'",
    'a T-shirt printed with "I <3 NY"', 'a wooden signpost: "Trail ➜ 2.5 km"',
]

CHINESE_SIMPLIFIED = [
    "今天天气很好，我们去公园散步吧。",
    "人工智能正在改变我们的生活方式。",
    "一只可爱的橘猫趴在窗台上晒太阳。",
    "请把这份文件翻译成英文，谢谢！",
    "北京是中国的首都，也是一座历史悠久的城市。",
    "他说：“明天见！”然后就离开了。",
    "这个问题的答案是四十二。",
    "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。",
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "我们需要在下周五之前完成这个项目。",
    "长城是世界上最长的建筑之一。",
    "学而时习之，不亦说乎？有朋自远方来，不亦乐乎？",
    "这家餐厅的火锅非常好吃，但是有点辣。",
    "小明今年十二岁，上六年级。",
    "数据科学家使用统计方法来分析大量数据。",
    "《红楼梦》是中国古典四大名著之一。",
    "价格：¥199.00（含税），限时优惠！",
    "你好，世界！Hello, world!",
    "电脑、手机、平板——现代人离不开电子设备。",
    "上海的外滩夜景非常美丽。",
    "我喜欢吃饺子、包子和面条。",
    "深度学习模型需要大量的计算资源。",
    "请注意：本店营业时间为早上九点至晚上十点。",
    "中华人民共和国成立于一九四九年十月一日。",
    "他一边听音乐，一边做作业。",
]
CHINESE_PROMPTS = [
    "一位穿着汉服的少女站在樱花树下，柔和的阳光，高清摄影",
    "夕阳下的江南水乡，小桥流水人家，水墨画风格",
    "赛博朋克风格的城市夜景，霓虹灯，雨后的街道，电影质感",
    "一碗热气腾腾的兰州拉面，特写，美食摄影",
    "雪山脚下的蓝色湖泊，清晨的薄雾，广角镜头，8K",
    "故宫的红墙金瓦，冬天下雪，游客稀少，写实风格",
    "一只熊猫在竹林里吃竹子，毛发细节丰富，自然光",
    "古风插画，一位侠客骑马穿过竹林，月光",
    "现代简约风格的客厅，落地窗，阳光洒进来，室内设计效果图",
    "海报设计，标题写着“新年快乐”，红色和金色，喜庆",
    "中国传统节日春节，家人团聚吃年夜饭，温馨的氛围",
    "敦煌壁画风格的飞天仙女，飘带，金色和青绿色",
    "一只橘猫戴着小帽子坐在书桌上，旁边有一杯咖啡，治愈系插画",
    "雨夜的香港街头，霓虹招牌，出租车，王家卫电影风格",
    "宇航员在月球上种花，超现实主义，柔和的色调",
]
CHINESE_TRADITIONAL = [
    "今天天氣很好，我們去公園散步吧。",
    "人工智慧正在改變我們的生活方式。",
    "臺灣的夜市小吃非常有名，例如蚵仔煎和珍珠奶茶。",
    "香港是一個國際化的大都市。",
    "這個問題的答案是四十二。",
    "請把這份文件翻譯成英文，謝謝！",
    "書法是中國傳統藝術的重要組成部分。",
    "龍舟節又稱端午節，人們會吃粽子、划龍舟。",
    "學而時習之，不亦說乎？",
    "電腦、手機、平板——現代人離不開電子產品。",
    "我們應該愛護環境，節約用水。",
    "這間餐廳的點心做得很道地。",
    "颱風即將登陸，請民眾做好防颱準備。",
    "繁體中文與簡體中文的差異主要在於字形。",
    "一隻可愛的貓咪躺在窗臺上曬太陽。",
]
JAPANESE = [
    "今日はいい天気ですね。",
    "私は毎朝コーヒーを飲みます。",
    "東京は日本の首都です。",
    "この本はとても面白かったです！",
    "すみません、駅はどこですか？",
    "桜の花が咲く季節になりました。",
    "ラーメンとお寿司、どちらが好きですか？",
    "吾輩は猫である。名前はまだ無い。",
    "古池や蛙飛び込む水の音",
    "カタカナとひらがなと漢字を混ぜて書きます。",
    "新幹線で大阪まで二時間半かかります。",
    "ｶﾀｶﾅの半角文字もあります。ｱｲｳｴｵ",
    "「こんにちは」と彼女は言った。",
    "明日の会議は午後３時からです。",
    "アニメ風のイラスト、青い髪の少女、夕焼けの空、高品質",
    "富士山と湖、朝焼け、写真、超高精細",
    "ありがとうございました。またお越しくださいませ。",
    "ヴァイオリンとチェロのコンサートに行きました。",
    "ー、〜、・、…などの記号も使われます。",
    "㈱、㌔、㍻などの互換文字。",
]
KOREAN = [
    "안녕하세요, 만나서 반갑습니다.",
    "오늘 날씨가 정말 좋네요!",
    "저는 매일 아침 커피를 마셔요.",
    "서울은 대한민국의 수도입니다.",
    "한국어는 한글로 씁니다.",
    "이 영화 정말 재미있었어요.",
    "김치찌개와 된장찌개 중에 뭐가 더 좋아요?",
    "내일 오후 세 시에 회의가 있습니다.",
    "벚꽃이 피는 봄이 왔습니다.",
    "감사합니다. 좋은 하루 되세요!",
    "한복을 입은 여인이 궁궐 앞에 서 있는 사진, 고화질",
    "밤하늘의 별과 은하수, 캠핑, 따뜻한 불빛",
    "세종대왕은 1443년에 훈민정음을 창제했습니다.",
    "ㅋㅋㅋㅋ ㅎㅎ ㅠㅠ 진짜 웃겨요",
    "읽다, 앉다, 없다, 닭, 값, 흙",
]
ARABIC = [
    "مرحبا بالعالم",
    "اللغة العربية جميلة جداً.",
    "السلام عليكم ورحمة الله وبركاته",
    "أنا أحب القراءة والكتابة.",
    "القاهرة هي عاصمة مصر.",
    "كم الساعة الآن؟",
    "٠١٢٣٤٥٦٧٨٩ أرقام عربية هندية",
    "بِسْمِ اللَّهِ الرَّحْمَٰنِ الرَّحِيمِ",
    "صورة لمدينة قديمة عند الغروب، ألوان دافئة",
    "هذا نص عربي with English words في المنتصف.",
]
HEBREW = [
    "שלום עולם",
    "אני אוהב ללמוד שפות חדשות.",
    "ירושלים היא עיר עתיקה.",
    "מה השעה עכשיו?",
    "בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    "טקסט בעברית עם English באמצע.",
    "תודה רבה!",
]
DEVANAGARI = [
    "नमस्ते दुनिया",
    "भारत एक विशाल देश है।",
    "मुझे हिंदी सीखना पसंद है।",
    "आज मौसम बहुत अच्छा है।",
    "संस्कृत एक प्राचीन भाषा है।",
    "०१२३४५६७८९ देवनागरी अंक",
    "क्षत्रिय, ज्ञान, श्री, द्वार",
    "ताजमहल आगरा में स्थित है।",
]
THAI = [
    "สวัสดีครับ",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "ขอบคุณมากค่ะ",
    "๐๑๒๓๔๕๖๗๘๙ เลขไทย",
    "วัดพระแก้วสวยงามมาก",
    "ผมชอบกินต้มยำกุ้ง",
]
CYRILLIC = [
    "Привет, мир!",
    "Москва — столица России.",
    "Я люблю читать книги по вечерам.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Київ — столиця України.",
    "Здравей, свят! Добро утро.",
    "Ёлка, ёжик и щётка.",
    "Фотография старого города на закате, тёплые тона, высокое качество",
    "ПРОПИСНЫЕ БУКВЫ и строчные буквы",
]
GREEK = [
    "Γειά σου Κόσμε!",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "Τὸ ὄνομα τοῦ ῥόδου",
    "αβγδεζηθικλμνξοπρστυφχψω ΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ",
    "Σίσυφος, ς at the end of a word: λόγος",
    "π ≈ 3.14159, Δx → 0, Σ aᵢ, μ = 0, σ² = 1",
]
OTHER_SCRIPTS = [
    "ሰላም ለዓለም",  # Amharic
    "Բարեւ աշխարհ",  # Armenian
    "გამარჯობა მსოფლიო",  # Georgian
    "வணக்கம் உலகம்",  # Tamil
    "ನಮಸ್ಕಾರ ಪ್ರಪಂಚ",  # Kannada
    "ഹലോ വേൾഡ്",  # Malayalam
    "হ্যালো বিশ্ব",  # Bengali
    "ਸਤਿ ਸ੍ਰੀ ਅਕਾਲ",  # Gurmukhi
    "မင်္ဂလာပါ",  # Burmese
    "សួស្តី​ពិភពលោក",  # Khmer (contains U+200B)
    "ສະບາຍດີ",  # Lao
    "Xin chào thế giới, tiếng Việt có nhiều dấu.",  # Vietnamese
    "Merhaba dünya, İstanbul'a gidiyorum. ıİiI",  # Turkish
    "Zażółć gęślą jaźń.",  # Polish
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",  # Czech
    "Þetta er íslenska með ð og þ.",  # Icelandic
    "Ĉu vi parolas Esperanton? Ĝi estas facila.",  # Esperanto
    "ᚠᚢᚦᚨᚱᚲ ᚷᚹ",  # Runic
    "𐌰𐌱𐌲𐌳 𓀀𓀁𓀂 𒀀𒀁",  # Gothic, hieroglyphs, cuneiform (astral)
    "ᐊᐃᐅᐸᑉᑊ",  # Canadian syllabics
    "ꦲꦏ꧀ꦱꦫꦗꦮ",  # Javanese
    "བཀྲ་ཤིས་བདེ་ལེགས།",  # Tibetan
    "ᠮᠣᠩᠭᠣᠯ",  # Mongolian
    "ދިވެހި",  # Thaana
    "ܫܠܡܐ",  # Syriac
    "ߒߞߏ",  # N'Ko
]

EMOJI_SIMPLE = ["😀", "😂", "🥲", "😍", "🤔", "🙈", "🔥", "✨", "🎉", "❤️", "❤", "💔", "👍", "👎", "🙏",
                "🐶", "🐱", "🦊", "🐼", "🌸", "🌈", "☀️", "⭐", "🍜", "🍣", "☕", "🚀", "🏠", "📷", "🎨",
                "✅", "❌", "⚠️", "➡️", "©️", "®️", "™️", "♻️", "☺", "✌️", "🫠", "🫶", "🪿", "🩷", "🫎"]
EMOJI_ZWJ = ["👨‍👩‍👧‍👦", "👩‍💻", "👨‍🚀", "🧑‍🎨", "👩‍❤️‍👨", "👨‍❤️‍💋‍👨", "🏳️‍🌈", "🏳️‍⚧️", "🐻‍❄️", "😶‍🌫️",
             "❤️‍🔥", "🧔‍♂️", "🏃‍♀️", "🏃‍♀️‍➡️", "👁️‍🗨️", "🐦‍⬛", "🍋‍🟩", "🧑‍🧑‍🧒"]
EMOJI_SKIN = ["👋", "👍", "✋", "🤝", "💪", "🧑", "👩", "👶", "🙋", "🤞"]
SKIN_TONES = ["\U0001F3FB", "\U0001F3FC", "\U0001F3FD", "\U0001F3FE", "\U0001F3FF"]
FLAGS = ["🇺🇸", "🇨🇳", "🇯🇵", "🇰🇷", "🇩🇪", "🇫🇷", "🇬🇧", "🇧🇷", "🇮🇳", "🇺🇦", "🇪🇺", "🇺🇳",
         "🏴󠁧󠁢󠁥󠁮󠁧󠁿", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏴󠁧󠁢󠁷󠁬󠁳󠁿", "🏁", "🚩", "🏴", "🏳️"]
KEYCAPS = ["0️⃣", "1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣", "6️⃣", "7️⃣", "8️⃣", "9️⃣", "#️⃣", "*️⃣", "🔟",
           "1\u20e3", "#\u20e3"]

CODE = [
    "def add(a, b):\n    return a + b\n",
    "import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\nprint(x.shape)",
    "for i in range(10):\n\tif i % 2 == 0:\n\t\tprint(f\"{i} is even\")",
    "class Foo(object):\n    \"\"\"Docstring.\"\"\"\n    def __init__(self, x: int = 0) -> None:\n        self._x = x\n",
    "lambda x: x**2 if x >= 0 else -x  # comment with 'quotes'",
    "func greet(_ name: String) -> String {\n    return \"Hello, \\(name)!\"\n}",
    "let xs: [Int] = [1, 2, 3].map { $0 * 2 }\nguard let y = xs.first else { fatalError() }",
    "struct Point: Hashable, Codable { var x: Double; var y: Double }",
    "@MainActor final class ViewModel: ObservableObject { @Published var items: [String] = [] }",
    "{\"name\": \"zimage\", \"version\": \"0.1.0\", \"tags\": [\"diffusion\", \"swift\"], \"ok\": true, \"n\": null}",
    "{\n  \"model_type\": \"qwen3\",\n  \"hidden_size\": 2560,\n  \"rope_theta\": 1000000.0\n}",
    "[{\"id\":1,\"v\":[0.5,-1e-3,3.0E+8]},{\"id\":2,\"v\":[]}]",
    "#!/bin/bash\nset -euo pipefail\nfor f in *.txt; do echo \"$f\"; done",
    "curl -sSL https://example.com/install.sh | bash -s -- --prefix=/usr/local",
    "ls -la ~/Documents && cd /tmp || exit 1; grep -rn 'TODO' . | wc -l",
    "export PATH=\"$HOME/.local/bin:$PATH\"\necho ${PATH//:/\\n}",
    "git commit -m \"Fix off-by-one in BPE merge loop\" && git push origin main",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE 'A%' ORDER BY id DESC;",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "const f = async (x) => { await sleep(100); return x ?? 0; };",
    "fn main() { let v: Vec<u8> = vec![0xff, 0x00]; println!(\"{:?}\", v); }",
    "<div class=\"card\"><p>Hello &amp; welcome</p><br/></div>",
    "x += 1; y -= 2; z *= 3; w /= 4; a %= 5; b **= 6; c //= 7; d <<= 1; e >>= 2;",
    "if (a != b && c <= d || !e) { return a === b ? c : d; }",
    "    indented with four spaces\n        and eight spaces\n\t\tand two tabs",
    "matrix = [[1, 2, 3],\n          [4, 5, 6],\n          [7, 8, 9]]",
    "def f():\r\n    pass\r\n",
    "key: value\nlist:\n  - item1\n  - item2\nnested:\n    deep: true",
    "[section]\nname = \"test\"\nversion = \"1.2.3\"",
    "$ python3 -c 'import sys; print(sys.version)'",
    "assert tok.encode(\"Hello\").ids == [9707]",
    "regex = r\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+\"",
    "a=b;c=d;e=f;g=h;i=j;k=l;m=n;o=p;q=r;s=t;u=v;w=x;y=z",
    "__name__ == \"__main__\" and __file__ and __init__.py",
    "0x1F600 0b1010 0o777 1_000_000 1e-10 .5 5. 0.0 -0 +1",
    "// Swift comment\n/* block\n   comment */\n/// doc comment",
]

URLS = [
    "https://www.example.com/path/to/page?query=1&lang=en#section-2",
    "http://localhost:8080/api/v1/users/42",
    "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo/blob/main/tokenizer/tokenizer.json",
    "ftp://files.example.org/pub/archive.tar.gz",
    "https://zh.wikipedia.org/wiki/中华人民共和国",
    "https://例子.测试/路径?查询=值",
    "https://en.wikipedia.org/wiki/Byte_pair_encoding#Algorithm",
    "www.google.com/search?q=swift+tokenizer&num=10",
    "mailto:someone@example.com?subject=Hello%20World",
    "file:///Users/me/Library/Application%20Support/zimage/cache",
    "https://user:p%40ss@host.example.com:8443/a/b/c.html",
    "https://github.com/huggingface/tokenizers/issues/1234#issuecomment-567890",
    "s3://bucket-name/prefix/object.safetensors",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
]
EMAILS = [
    "john.doe@example.com", "first.last+tag@sub.domain.co.uk", "admin@localhost",
    "user_name-123@my-company.io", "\"quoted local\"@example.org", "用户@例子.广告",
    "support@z-image.ai", "a@b.c", "very.common@example.com", "x@example.com, y@example.com; z@example.com",
]

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]
# Strings that look like added tokens but are not (must be BPE-tokenized as text).
NEAR_SPECIAL = [
    "<|im_sta", "<|im_start", "|im_start|>", "<|im_start|", "<im_start>", "<|IM_START|>", "<| im_start |>",
    "<|im start|>", "<|im_end||>", "<||im_end|>", "<|endoftext", "endoftext|>", "<|end_of_text|>",
    "<think", "think>", "<Think>", "<THINK>", "< think>", "<think >", "</ think>", "<//think>",
    "<tool_call", "<tool-call>", "<toolcall>", "<|tool_call|>", "<|think|>", "<|system|>",
    "<s>", "</s>", "<unk>", "<pad>", "<|begin_of_text|>", "[INST]", "<<SYS>>", "<|assistant|>",
    "＜|im_start|＞", "<\u200b|im_start|>", "<|im_start|\u200b>", "<|im_\u0073tart|>",
    "<|im_ſtart|>",
]

CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
APOSTROPHES = ["'", "’", "‘", "ʼ", "`", "´", "′", "＇"]

UNICODE_SPACES = ["\u00a0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005",
                  "\u2006", "\u2007", "\u2008", "\u2009", "\u200a", "\u2028", "\u2029", "\u202f",
                  "\u205f", "\u3000", "\u0085", "\u000b", "\u000c"]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u180e", "\u00ad", "\u034f",
              "\u200e", "\u200f", "\u202a", "\u202c", "\u2066", "\u2069"]
NOT_WHITESPACE_CONTROLS = ["\x1c", "\x1d", "\x1e", "\x1f", "\x00", "\x01", "\x07", "\x08", "\x1b",
                           "\x7f", "\x80", "\x9f"]

MATH = [
    "∀x ∈ ℝ: x² ≥ 0", "∑_{i=1}^{n} i = n(n+1)/2", "∫₀^∞ e^{−x²} dx = √π / 2", "a ≠ b ⇒ a − b ≠ 0",
    "A ∪ B ∩ C ⊆ D", "f: ℕ → ℤ", "≤ ≥ ≈ ≡ ∞ ∂ ∇ √ ∛ ∝ ∠ ⊥ ∥ ∧ ∨ ¬ ⊕ ⊗", "½ ⅓ ¼ ⅛ ¾ ⅔",
    "x₁ + x₂ = y³", "E = mc²", "𝔸𝔹ℂ 𝐀𝐁𝐂 𝑎𝑏𝑐 𝒜ℬ𝒞 𝟘𝟙𝟚", "ℵ₀ < 2^ℵ₀", "Ⅰ Ⅱ Ⅲ Ⅳ Ⅻ ⅰ ⅱ ⅲ",
    "① ② ③ ⑩ ⑳ ㊿", "°C °F ‰ ‱ ′ ″", "± × ÷ · • ∘", "→ ← ↑ ↓ ↔ ⇐ ⇔ ↦", "$\\frac{a}{b} + \\sqrt{x}$",
    "$$\\int_0^1 x\\,dx = \\tfrac12$$", "2³² = 4294967296", "10⁻⁹ m", "¹²³⁴⁵⁶⁷⁸⁹⁰", "₀₁₂₃₄₅₆₇₈₉",
]
PUNCT = [
    "!!!", "???", "?!?!", "...", "…", "—", "–", "--", "---", "***", "###", "@@@", "$$$", "%%%", "^^^",
    "&&&", "(((", ")))", "[[[]]]", "{{}}", "<<>>", "||", "\\\\", "//", "::", "::=", ";;", ",,", "..",
    "''", "\"\"", "``", "~~~", "___", "+++", "===", "-->", "<--", "=>", "->", "<=>", "<!-- -->",
    "«»", "‹›", "„“", "‚‘", "「」", "『』", "【】", "〔〕", "《》", "〈〉", "（）", "，。！？",
    "、；：", "¡¿", "§¶", "†‡", "※", "〃", "々", "〆", "·", "・", "¦", "¬", "¯", "¸", "¨",
    "\u00b4", "ˆ˜", "☆★", "♠♣♥♦", "♪♫", "☐☑☒", "✓✗", "⌘⌥⇧", "⏎", "⌫", "█▓▒░", "─│┌┐└┘",
]

NUMBERS_FIXED = [
    "0", "1", "42", "007", "1234567890", "1234567890123", "12345678901234567890", "3.14159",
    "3.14159265358979323846", "2.718281828", "-1", "-0.5", "+7", "1e10", "6.022e23", "1.6E-19",
    "1,000,000", "1.000.000,00", "1 000 000", "1'000'000", "10^6", "100%", "50.5%", "$1,299.99",
    "€9,99", "¥10000", "£3.50", "₹1,00,000", "2024-01-15", "15/01/2024", "01/15/2024", "2024年1月15日",
    "12:34:56", "23:59", "7:30 a.m.", "T12:00:00Z", "2025-11-27T08:15:30+09:00", "1999–2024",
    "v1.2.3", "1.2.3-beta.4+build.567", "192.168.0.1", "::1", "fe80::1ff:fe23:4567:890a",
    "+1 (555) 123-4567", "+86 138 0013 8000", "ISBN 978-3-16-148410-0", "4111 1111 1111 1111",
    "0.1 + 0.2 = 0.30000000000000004", "1/2", "3/4", "22/7", "1:1", "16:9", "4K", "8K", "1080p",
    "512x512", "1024×1024", "A4", "3rd", "21st", "2nd", "100th", "No. 5", "#1", "№ 7", "i7-13700K",
    "x86_64", "H100", "bf16", "fp32", "1.5B", "4B", "671B", "Qwen3-4B", "GPT-4o", "30°", "98.6°F",
]
NUMBERS_FULLWIDTH = ["０１２３４５６７８９", "１２３", "ＡＢＣ１２３"]


def sanitize_line(s):
    """JSON-encode one corpus string using the escaping rules in the module docstring."""
    out = json.dumps(s, ensure_ascii=False)
    extra = []
    for ch in out:
        o = ord(ch)
        if o == 0x7F or 0x80 <= o <= 0x9F or o in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF):
            extra.append("\\u%04x" % o)
        else:
            extra.append(ch)
    out = "".join(extra)
    assert "\n" not in out and "\r" not in out
    assert json.loads(out) == s
    return out


class Corpus:
    def __init__(self):
        self.lines = []
        self.sections = []
        self._cur = None
        self._seen = set()

    def section(self, name):
        self._close()
        self._cur = (name, len(self.lines))

    def _close(self):
        if self._cur is not None:
            self.sections.append({"name": self._cur[0], "start": self._cur[1], "end": len(self.lines)})
            self._cur = None

    def add(self, s):
        assert isinstance(s, str)
        for ch in s:
            assert not (0xD800 <= ord(ch) <= 0xDFFF), "lone surrogate"
        if s in self._seen:
            return  # keep lines unique; the first occurrence decides the section
        self._seen.add(s)
        self.lines.append(s)

    def sections_start(self):
        return self._cur[1]

    def finish(self):
        self._close()


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------

def sec_english(c, rng):
    c.section("english_prose")
    for s in ENGLISH:
        c.add(s)
    seps = [" ", " ", " ", "  ", "\n", "\n\n", " \n", "\t"]
    while len(c.lines) - c.sections_start() < 150:
        k = rng.randint(2, 6)
        parts = rng.sample(ENGLISH, k)
        out = parts[0]
        for p in parts[1:]:
            out += rng.choice(seps) + p
        c.add(out)
    # short phrases and single words
    for w in ["Hello", "hello", "HELLO", " Hello", "Hello ", "Hello world", "Hello, world!", "a", "I", "A",
              "the", " the", "The", "THE", "tHe", "ok", "OK", "Ok", "cat", "cats", "cat's", "Cat's",
              "antidisestablishmentarianism", "floccinaucinihilipilification", "z", "Zz", "zzzzzz"]:
        c.add(w)


def sec_prompts(c, rng):
    c.section("image_prompts")
    start = len(c.lines)
    # short
    for subj in PROMPT_SUBJECTS:
        c.add(subj)
        c.add(subj[0].upper() + subj[1:] + ".")
    for t in PROMPT_TEXT_IN_IMAGE:
        c.add(t)
        c.add("A photo of " + t + ", " + rng.choice(PROMPT_DETAILS))
    while len(c.lines) - start < 330:
        subj = rng.choice(PROMPT_SUBJECTS)
        style = rng.choice(PROMPT_STYLES)
        n = rng.choice([1, 2, 3, 5, 8, 12, 20])
        dets = rng.sample(PROMPT_DETAILS, min(n, len(PROMPT_DETAILS)))
        form = rng.randint(0, 5)
        if form == 0:
            p = f"{subj}, {style}, " + ", ".join(dets)
        elif form == 1:
            p = f"A {style} image of {subj}. " + ". ".join(d.capitalize() for d in dets) + "."
        elif form == 2:
            p = f"{style} | {subj} | " + " | ".join(dets)
        elif form == 3:
            p = f"({subj}:1.2), [{style}], " + ", ".join(dets) + ", negative: blurry, lowres, bad anatomy"
        elif form == 4:
            p = (f"Create {subj} in the style of {style}. The scene should feature " + ", ".join(dets[:-1])
                 + (" and " if len(dets) > 1 else "") + dets[-1] + ". " + rng.choice(ENGLISH))
        else:
            p = f"{subj}\n{style}\n" + "\n".join("- " + d for d in dets)
        c.add(p)


def sec_cjk(c, rng):
    c.section("chinese_simplified")
    for s in CHINESE_SIMPLIFIED:
        c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 80:
        k = rng.randint(2, 4)
        c.add(rng.choice(["", "", " ", "\n"]).join(rng.sample(CHINESE_SIMPLIFIED, k)))
    c.section("chinese_prompts")
    for s in CHINESE_PROMPTS:
        c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 60:
        a = rng.choice(CHINESE_PROMPTS)
        b = rng.choice(PROMPT_DETAILS)
        form = rng.randint(0, 3)
        if form == 0:
            c.add(a + "，" + b)
        elif form == 1:
            c.add(a + ", " + b + ", " + rng.choice(PROMPT_STYLES))
        elif form == 2:
            c.add(rng.choice(PROMPT_SUBJECTS) + "，" + a)
        else:
            c.add(a.replace("，", ", "))
    c.section("chinese_traditional")
    for s in CHINESE_TRADITIONAL:
        c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 50:
        k = rng.randint(2, 3)
        c.add(rng.choice(["", " ", "\n"]).join(rng.sample(CHINESE_TRADITIONAL, k)))
    c.section("japanese")
    for s in JAPANESE:
        c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 80:
        k = rng.randint(1, 3)
        parts = rng.sample(JAPANESE, k)
        if rng.random() < 0.3:
            parts.append(rng.choice(ENGLISH))
        c.add(rng.choice(["", " ", "\n", "　"]).join(parts))
    c.section("korean")
    for s in KOREAN:
        c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 80:
        k = rng.randint(1, 3)
        parts = rng.sample(KOREAN, k)
        if rng.random() < 0.3:
            parts.append(rng.choice(ENGLISH))
        c.add(rng.choice([" ", " ", "\n", ""]).join(parts))


def sec_emoji(c, rng):
    c.section("emoji")
    for e in EMOJI_SIMPLE + EMOJI_ZWJ + FLAGS + KEYCAPS:
        c.add(e)
    for e in EMOJI_SKIN:
        for t in SKIN_TONES:
            c.add(e + t)
    c.add("".join(FLAGS))
    c.add("".join(KEYCAPS))
    c.add(" ".join(EMOJI_ZWJ))
    c.add("\U0001F1E6")  # lone regional indicator
    c.add("\U0001F1E6\U0001F1E7\U0001F1E8")  # odd count of regional indicators
    c.add("\u200d\u200d👩")  # ZWJ at the start
    c.add("👩\u200d")  # ZWJ at the end
    c.add("\ufe0f")  # lone VS16
    c.add("A\ufe0e\ufe0f")
    c.add("\U0001F3FD")  # lone skin tone modifier
    start = len(c.lines)
    pool = EMOJI_SIMPLE + EMOJI_ZWJ + FLAGS + KEYCAPS + [e + t for e in EMOJI_SKIN for t in SKIN_TONES]
    while len(c.lines) - start < 110:
        form = rng.randint(0, 4)
        if form == 0:
            c.add("".join(rng.choice(pool) for _ in range(rng.randint(2, 12))))
        elif form == 1:
            c.add(rng.choice(ENGLISH) + " " + "".join(rng.choice(pool) for _ in range(rng.randint(1, 3))))
        elif form == 2:
            c.add(rng.choice(pool) + rng.choice(CHINESE_SIMPLIFIED + JAPANESE + KOREAN) + rng.choice(pool))
        elif form == 3:
            c.add(" ".join(rng.choice(pool) for _ in range(rng.randint(2, 8))))
        else:
            w = rng.choice(PROMPT_SUBJECTS)
            c.add(f"{rng.choice(pool)} {w} {rng.choice(pool)}{rng.choice(pool)}, {rng.choice(PROMPT_STYLES)}")


def sec_numbers(c, rng):
    c.section("numbers")
    for n in NUMBERS_FIXED + NUMBERS_FULLWIDTH:
        c.add(n)
    for k in range(1, 41):
        c.add("".join(str((i * 7 + k) % 10) for i in range(k)))
    for s in ["9" * 25, "0" * 30, "1" * 17, "12" * 15, "3.1415926535897932384626433832795028841971",
              "1,234,567,890,123", "-9223372036854775808", "18446744073709551615", "0.000000001",
              "1e-308", "1.7976931348623157e+308", "NaN", "Infinity", "-inf", "0x7fffffff", "0xDEADBEEF"]:
        c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 100:
        form = rng.randint(0, 7)
        if form == 0:
            c.add(str(rng.randint(0, 10 ** rng.randint(1, 20))))
        elif form == 1:
            c.add(f"{rng.uniform(-1000, 1000):.{rng.randint(1, 8)}f}")
        elif form == 2:
            c.add(f"{rng.randint(1000, 9999)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
        elif form == 3:
            c.add(f"{rng.randint(0, 10**9):,}")
        elif form == 4:
            c.add(f"The price is ${rng.randint(1, 9999)}.{rng.randint(0, 99):02d} for {rng.randint(2, 50)} items.")
        elif form == 5:
            c.add(f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")
        elif form == 6:
            c.add(f"{rng.randint(64, 2048)}x{rng.randint(64, 2048)}, seed {rng.randint(0, 2**32)}, steps {rng.randint(1, 50)}, cfg {rng.randint(0, 100) / 10}")
        else:
            c.add(f"{rng.randint(1, 9)}{rng.choice(['万', '亿', '千', '百', 'K', 'M', 'B', '%', '元', '円', '원'])}")


def sec_whitespace(c, rng):
    c.section("whitespace")
    # runs of spaces between words, at the start, at the end, alone
    for n in range(1, 33):
        c.add("a" + " " * n + "b")
        c.add(" " * n)
        c.add(" " * n + "x")
        c.add("x" + " " * n)
    for n in [40, 50, 64, 100, 128, 255, 256, 257]:
        c.add(" " * n)
        c.add("word" + " " * n + "word")
    for n in range(1, 17):
        c.add("\n" * n)
        c.add("a" + "\n" * n + "b")
        c.add("\t" * n)
        c.add("a" + "\t" * n + "b")
        c.add("\r\n" * n)
    for n in range(1, 9):
        c.add("x" + "\r" * n + "y")
        c.add("x" + " \n" * n + "y")
        c.add("x" + "\n " * n + "y")
        c.add("x" + " " * n + "\n" + " " * n + "y")
        c.add("x" + "\t \n" * n)
    fixed = [
        "", " ", "\n", "\r", "\r\n", "\n\r", "\t", " \t ", "\t\n", "\n\t", " \r\n ", "\n\n\n", "a\n\n\nb",
        "line1\r\nline2\r\nline3", "line1\nline2\r\nline3\rline4", "  leading spaces", "trailing spaces  ",
        "  both  ", "\ttab\tseparated\tvalues\t", "col1\tcol2\tcol3\n1\t2\t3\n",
        "a \nb", "a  \n  b", "a\n  b", "a  \nb", "a\t\nb", "a\n\tb", "a \t b", "a\t \tb",
        "end with newline\n", "end with two\n\n", "\nstart with newline", "\n\nstart with two",
        "hello \n\n world", "hello\n \nworld", "x \r\n\r\n y", "!\n", "!\n\n", "! \n", "!\r\n", "?!\n\n\n",
        "...\n", "a.\nb", "a.\n\nb", ".\n.\n.", "...   \n   ...", "1 \n 2", "1\n\n2", "中\n文", "中 \n 文",
        "x\u000by", "x\u000cy", "x\u0085y", "x\u2028y", "x\u2029y", "x\u000b\u000cy", "\u000b", "\u000c",
        "a\u000b b", "a \u000b", "\u00a0", "\u00a0\u00a0", "\u3000\u3000\u3000",
    ]
    for s in fixed:
        c.add(s)
    for sp in UNICODE_SPACES:
        c.add("a" + sp + "b")
        c.add(sp + "a")
        c.add("a" + sp)
        c.add("a" + sp + sp + "b")
        c.add("a " + sp + "b")
        c.add("a" + sp + " b")
        c.add("1" + sp + "2")
        c.add("!" + sp + "?")
        c.add(sp + "\n" + sp)
    for z in ZERO_WIDTH:
        c.add("a" + z + "b")
        c.add(z + "word")
        c.add("word" + z)
        c.add("a" + z + z + "b")
        c.add(" " + z + " ")
        c.add("1" + z + "2")
    for z in NOT_WHITESPACE_CONTROLS:
        c.add("a" + z + "b")
        c.add("a" + z + z + "b")
        c.add(" " + z)
    c.add("Prices:\u00a0$5\u00a0–\u00a0$10\u202fper\u2009unit")
    c.add("Ｆｕｌｌ\u3000ｗｉｄｔｈ\u3000ｓｐａｃｅ")
    c.add("日本語\u3000の\u3000文章")
    c.add("soft\u00adhyphen and word\u2060joiner")
    start = len(c.lines)
    ws = [" ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u200b", "\u2028",
          "\u0085", "\u000b", "\u000c", "\x1c", "\x1f"]
    words = ["a", "the", "ab", "1", "42", "!", "...", "é", "中文", "🙂", "'s", "x", "A", "-"]
    while len(c.lines) - start < 120:
        n = rng.randint(1, 10)
        out = rng.choice(["", rng.choice(ws)])
        for _ in range(n):
            out += rng.choice(words) + "".join(rng.choice(ws) for _ in range(rng.randint(0, 4)))
        c.add(out)


def sec_code(c, rng):
    c.section("code")
    for s in CODE:
        c.add(s)
    ids = ["x", "y", "value", "self", "tokenizer", "merges", "vocab", "ids", "i", "j", "result", "_tmp", "MAX_LEN"]
    ops = [" = ", " += ", " == ", " != ", " -> ", " => ", ".", "(", ")", "[", "]", "{", "}", ", ", ": ", "::", " && ", " || "]
    start = len(c.lines)
    while len(c.lines) - start < 90:
        lines = []
        for _ in range(rng.randint(1, 6)):
            indent = rng.choice(["", "    ", "        ", "\t", "\t\t", "  "])
            toks = [rng.choice(ids)]
            for _ in range(rng.randint(1, 8)):
                toks.append(rng.choice(ops))
                toks.append(rng.choice(ids + [str(rng.randint(0, 1000)), '"str"', "'c'", "0.5", "None", "nil", "true"]))
            lines.append(indent + "".join(toks))
        c.add(rng.choice(["\n", "\r\n", "\n\n"]).join(lines))


def sec_urls(c, rng):
    c.section("urls_emails")
    for u in URLS + EMAILS:
        c.add(u)
        c.add("See " + u + " for details.")
        c.add("<" + u + ">")
    start = len(c.lines)
    hosts = ["example.com", "huggingface.co", "github.com", "tongyi.aliyun.com", "qq.com", "foo.bar.baz.io"]
    while len(c.lines) - start < 40:
        path = "/".join(rng.choice(["api", "v2", "images", "tokenizer.json", "a-b_c", "%E4%B8%AD", "~user", "123"])
                        for _ in range(rng.randint(1, 5)))
        q = "&".join(f"{rng.choice(['q', 'id', 'lang', 'page'])}={rng.randint(0, 999)}" for _ in range(rng.randint(0, 3)))
        u = f"{rng.choice(['https', 'http'])}://{rng.choice(hosts)}/{path}" + ("?" + q if q else "")
        c.add(u if rng.random() < 0.5 else f"Contact {rng.choice(EMAILS)} or visit {u}.")


def sec_contractions(c, rng):
    c.section("contractions")
    # every contraction in every letter case, in several contexts
    for con in CONTRACTIONS:
        body = con[1:]
        variants = set()
        for mask in range(1 << len(body)):
            v = "".join(ch.upper() if (mask >> i) & 1 else ch for i, ch in enumerate(body))
            variants.add("'" + v)
        for v in sorted(variants):
            c.add(v)
            c.add("it" + v)
            c.add("it" + v + " ok")
            c.add("IT" + v + "x")
            c.add(" " + v)
            c.add("1" + v)
            c.add(v + v)
            c.add("x " + v + "abc")
    # long s and Kelvin/Angstrom signs (fold or normalize to ASCII-ish letters)
    for s in ["'ſ", "it'ſ", "IT'ſ ok", "'ſabc", "x'ſt", "'ſſ", "'sſ", "'Sſ", "ſ", "'ſ'ſ", "Caeſar'ſ", "'\u212a",
              "'\u212b", "it'\u212aa", "\u212a", "'\u017fs", "'\u1e9b", "'\u0073\u0307", "'ß", "'ẞ", "'ﬅ", "'ﬆ",
              "'ſ'S's'T'RE'VE'M'LL'D", "don\u2019t", "DON\u2019T", "it\u2019s", "we\u2019ll", "I\u2019m"]:
        c.add(s)
    fixed = [
        "I'm", "I'M", "i'm", "You're", "YOU'RE", "you'Re", "We've", "WE'VE", "they'll", "THEY'LL", "She'd",
        "SHE'D", "It's", "IT'S", "it'S", "don't", "DON'T", "Don'T", "won't", "can't", "shan't", "y'all",
        "ma'am", "o'clock", "rock'n'roll", "'tis", "'twas", "'em", "'90s", "the '90s", "James's", "Jameses'",
        "dogs' bowls", "the boss's office", "O'Neill", "D'Angelo", "l'homme", "aujourd'hui", "dell'arte",
        "'''", "'''s", "''s", "' s", "'  s", "'\ns", "'\ts", "'1", "'s1", "'sa'sb", "x'y'z", "'", "''", "'a'",
        "He said 'hello'", "'Hello,' she said, 'it's me.'", "'re'll've'd'm's't", "'RE'LL'VE'D'M'S'T",
        "it's it’s it`s it´s itʼs", "'S 'T 'Re 'LL 'd", "'s 'S 'T 'Re 'LL 'd 'ſ",
    ]
    for s in fixed:
        c.add(s)
    start = len(c.lines)
    words = ["it", "he", "she", "they", "we", "you", "I", "John", "cat", "dog", "IT", "HE", "x", "123", "中文", "é"]
    while len(c.lines) - start < 60:
        out = []
        for _ in range(rng.randint(1, 6)):
            con = rng.choice(CONTRACTIONS + ["'ſ", "'x", "'"])
            con = "".join(ch.upper() if rng.random() < 0.4 else ch for ch in con)
            apo = rng.choice(APOSTROPHES[:3] + ["'"] * 5)
            out.append(rng.choice(words) + apo + con[1:])
        c.add(rng.choice([" ", "", "  ", "\n"]).join(out))


def sec_special(c, rng):
    c.section("special_tokens")
    for t in SPECIAL_TOKENS:
        c.add(t)
        c.add("a" + t + "b")
        c.add(" " + t + " ")
        c.add("Hello " + t + " world")
        c.add(t + t)
        c.add("\n" + t + "\n")
        c.add("  " + t)
        c.add(t + "  ")
        c.add("x  " + t + "  y")
        c.add("'s" + t + "'s")
        c.add(t[:-1])
        c.add(t[1:])
    for t in NEAR_SPECIAL:
        c.add(t)
        c.add("text " + t + " text")
    fixed = [
        "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|>assistant\n<think>\n\n</think>\n\n",
        "<think>reasoning here</think>answer",
        "<think>\nstep 1\nstep 2\n</think>\n\nFinal answer: 42",
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
        "<|im_start|><|im_start|><|im_end|><|im_end|>",
        "<|im_start|><|im_end|><|endoftext|><think></think><tool_call></tool_call>",
        "<|im_end|>\n<|im_start|>",
        "<|<|im_start|>|>", "<|im_start|im_end|>", "<|im_<|im_end|>start|>", "<<|im_start|>>",
        "<|im_start|>>", "<<think>>", "<think></think>", "<think><think>", "</think></think>", "<think>\n</think>",
        "</think>\n\n", "<think>\n\n</think>\n\n", "<|endoftext|><|endoftext|><|endoftext|>",
        "e<|im_end|>\u0301", "\u0301<|im_start|>", "A<think>\u030a", "<|im_start|>\u0301x", "가<|im_end|>\u11a8",
        "'<|im_end|>s", "it'<think>s", "1<|im_end|>2", "a <|im_end|> b", "a  <|im_end|>  b", "a\n<|im_end|>\nb",
        "a\u00a0<|im_end|>\u00a0b", "😀<|im_end|>😀", "中<|im_end|>文", "<|im_end|>" * 10,
        "<|fim_prefix|>def f(x):<|fim_suffix|>    return y<|fim_middle|>",
        "<|repo_name|>zimage\n<|file_sep|>Sources/main.swift\nprint(1)",
        "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe the image.",
        "<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(10,20),(30,40)<|box_end|>",
        "Use <|im_start|> and <|im_end|> to delimit messages; <|endoftext|> ends a document.",
        "<IM_START> <|Im_Start|> <|im_start |> <| im_start|>", "<|im_start|>user", "user<|im_start|>",
        "prompt with special token text: <|im_end|> inside it",
    ]
    for s in fixed:
        c.add(s)
    start = len(c.lines)
    frags = ["a", " ", "  ", "\n", "x y", "'s", "中文", "🙂", "<", ">", "|", "<|", "|>", "im_", "start", "end",
             "think", "/", "é", "e\u0301", "1", "!!"]
    while len(c.lines) - start < 80:
        out = ""
        for _ in range(rng.randint(2, 10)):
            out += rng.choice(SPECIAL_TOKENS) if rng.random() < 0.35 else rng.choice(frags)
        c.add(out)


def sec_nfc(c, rng):
    c.section("nfc")
    fixed = [
        "e\u0301", "E\u0301", "cafe\u0301", "caf\u00e9", "re\u0301sume\u0301", "A\u030a", "\u212b", "\u00c5",
        "Ångstro\u0308m", "n\u0303", "u\u0308ber", "o\u0308\u0304", "\u1e69", "s\u0323\u0307", "s\u0307\u0323",
        "a\u0323\u0301", "a\u0301\u0323", "q\u0307\u0323", "\u1100\u1161", "\u1100\u1161\u11a8", "\u1112\u1161\u11ab\u1100\u1173\u11af",
        "\u110b\u1161\u11ab\u1102\u1167\u11bc\u1112\u1161\u1109\u1166\u110b\u116d", "\uac00\u11a8", "\u1100", "\u1161", "\u11a8",
        "\u1100\u1100\u1161\u1161", "\u3131\u314f", "\u212a", "\u2126", "\u00c5\u030a", "\u0041\u030a\u0301",
        "\u0301", "\u0301\u0301", " \u0301", "\u0301abc", "abc\u0301", "1\u0301", "'\u0301s", "\u0300\u0301\u0302\u0303\u0304",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324\u031e\u0349\u035a\u032f\u031e\u0320\u034dA\u036b\u0357\u0334\u0362\u0335\u031c\u0330\u0354L\u0368\u0367\u0369\u0358\u0320G\u0311\u0357\u030e\u0305\u035b\u0341\u0334\u033b\u0348\u034d\u0354\u0339O\u0342\u030c\u030c\u0358\u0328\u0335\u0339\u033b\u031d\u0333",
        "\u0915\u094d\u0937", "\u0928\u093c", "\u0929", "\u0958", "\u0915\u093c", "\u09cb", "\u09c7\u09be", "\u0b48", "\u0b47\u0b56",
        "\u05e9\u05c1", "\ufb2a", "\u05e9\u05bc\u05c1", "\u0627\u0653", "\u0622", "\u0648\u0654", "\u0624",
        "\u30ab\u3099", "\u30ac", "\u304b\u3099", "\uff76\uff9e", "\u30cf\u309a", "\u1e9b\u0323", "\u0390", "\u03b9\u0308\u0301",
        "\u1f00\u0345", "\u2000", "\u2001", "\uf900", "\ufa10", "\U0002f800", "\u0344", "\u0958\u093c", "\u00e9\u0301",
        "ﬁ", "ﬂ", "ﬀ", "ﬃ", "Ⅻ", "①", "²", "ｈｅｌｌｏ", "㍿", "㌀", "µ", "\u03bc", "Ω", "\u2126", "K", "\u212a",
        "\u0041\u0308\u0304", "\u01de", "\u1ea0\u0306", "\u1eb6", "\u0061\u0328\u0301", "\u0105\u0301",
        "Hello\u0301 World\u0308", "Cafe\u0301 au lait, nai\u0308ve, Zu\u0308rich, Ma\u0303o",
        "\u0063\u0327\u0061\u0301", "\u1e0b\u0323", "\u1e0d\u0307", "d\u0307\u0323", "d\u0323\u0307",
        "\uac00\u0300", "\u1100\u0300\u1161", "\u1100\u1161\u0300\u11a8",
    ]
    for s in fixed:
        c.add(s)
    # systematic: decomposed Latin letters with the common accents
    bases = "aeiouyncsAEIOUYNCS"
    marks = ["\u0300", "\u0301", "\u0302", "\u0303", "\u0308", "\u030a", "\u030c", "\u0327", "\u0328", "\u0304"]
    for b in bases:
        c.add(b + "".join(marks[i] for i in range(0, len(marks), 3)))
        c.add(" ".join(b + m for m in marks))
    # Hangul: decomposed syllables (LV, LVT), unusual jamo runs
    for i in range(40):
        L = 0x1100 + rng.randrange(19)
        V = 0x1161 + rng.randrange(21)
        T = 0x11A7 + rng.randrange(28)
        s = chr(L) + chr(V) + (chr(T) if T != 0x11A7 else "")
        c.add(s + " " + s + s)


def sec_scripts(c, rng):
    c.section("other_scripts")
    pools = [ARABIC, HEBREW, DEVANAGARI, THAI, CYRILLIC, GREEK, OTHER_SCRIPTS]
    for p in pools:
        for s in p:
            c.add(s)
    start = len(c.lines)
    while len(c.lines) - start < 150:
        p = rng.choice(pools)
        k = rng.randint(1, min(3, len(p)))
        parts = rng.sample(p, k)
        if rng.random() < 0.25:
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(ENGLISH))
        c.add(rng.choice([" ", "\n", "", ". "]).join(parts))


def sec_math_punct(c, rng):
    c.section("math_punct")
    for s in MATH + PUNCT:
        c.add(s)
    for p in PUNCT[:40]:
        c.add("word" + p + "word")
        c.add(" " + p + "\n")
    start = len(c.lines)
    pool = "".join(PUNCT) + "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    while len(c.lines) - start < 60:
        n = rng.randint(1, 30)
        s = "".join(rng.choice(pool) for _ in range(n))
        if rng.random() < 0.5:
            s = rng.choice(["a", " a", "1", "中", " "]) + s + rng.choice(["\n", "\r\n", "", " ", "x", "\n\n"])
        c.add(s)


def sec_mixed(c, rng):
    c.section("mixed_scripts")
    fixed = [
        "Hello世界", "你好world", "こんにちはWorld", "안녕Hello", "Привет世界", "abc中def文ghi", "iPhone15Pro",
        "GPT4o模型", "Qwen3的tokenizer", "2024年AI发展", "Z-Image-Turbo生成的图片", "日本語とEnglishと한국어",
        "αβγabc123", "שלוםhello", "مرحباhello", "नमस्तेhello", "ไทยEnglish", "😀abc😀中文😀",
        "e\u0301中\u0301", "中文，English，日本語。", "中文,English.日本語!", "ＡＢＣabc", "ＡＢＣ中文",
        "x²+y²=z²", "H₂O", "CO₂排放", "5G网络", "COVID-19疫情", "第3章", "3个", "Ⅲ型", "①号", "iOS17",
    ]
    for s in fixed:
        c.add(s)
    start = len(c.lines)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生",
        "あいうえおかきくけこアイウエオカキクケコ",
        "가나다라마바사아자차카타파하한글",
        "абвгдежзийклмнопрстуфхцчшщъыьэюя",
        "αβγδεζηθικλμνξοπρστυφχψω",
        "0123456789",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
        "กขคงจฉชซญดตถทนบปผพฟมยรลวศษสหอฮ",
    ]
    while len(c.lines) - start < 60:
        s = ""
        for _ in range(rng.randint(2, 8)):
            p = rng.choice(pools)
            s += "".join(rng.choice(p) for _ in range(rng.randint(1, 6)))
        c.add(s)


def sec_controls(c, rng):
    c.section("controls_and_odd")
    fixed = [
        "\x00", "a\x00b", "\x00\x00", "\x01\x02\x03", "\x1b[31mred\x1b[0m", "bell\x07", "back\x08space",
        "\x7f", "del\x7fete", "\x80\x81\x9f", "\u00ad", "\ufffd", "a\ufffdb", "\ufffd\ufffd", "\uffff",
        "\ufffe", "\U0010ffff", "\U0010fffd", "\U000f0000", "\ue000", "\uf8ff", "a\ue000b", "\U000e0001",
        "\U000e0041\U000e0042", "\U0001fffe", "\U0001d11e", "\U0001f9ff", "\U00020000", "\U0002a6df",
        "\ufeffBOM at start", "BOM\ufeffin middle", "\u2028", "\u2029", "\u0085", "\u061c", "\u115f\u1160",
        "\u3164", "\uffa0", "\u2800", "\u2800\u2800", "a\u2800b", "\u00ff\u00fe", "\u0100\u017f", "\u0131\u0130",
    ]
    for s in fixed:
        c.add(s)


def sec_unicode_versions(c, rng):
    """Characters whose \\p{L}/\\p{N}/NFC treatment depends on the Unicode version.

    HF tokenizers 0.23.3 (Oniguruma) classifies \\p{L} and \\p{N} per Unicode 16.0, while its NFC
    (unicode-normalization-alignments) uses Unicode 9.0 data: combining marks added in Unicode 10+
    have combining class 0 there, and post-9.0 canonical compositions are not applied. See README.
    """
    c.section("unicode_version_edges")
    fixed = [
        # Unicode 15/15.1/16 letters and digits (HF: \p{L} / \p{N})
        "a\U00031350b", "\U0002ebf0\U0002ebf1", "x\u1c89y", "\ua7cb\ua7cc\ua7cd", "\U000105c0\U000105c1",
        "\U00010d4a\U00010d4b", "\U00011bc0\U00011bc1", "\U0001e5d0\U0001e5d1", "\U00016d40\U00016d41",
        "1\U00010d40\U00010d41", "\U00016d70\U00016d71", "\U000116d0\U000116d1",
        # Unicode 17 letters (HF 0.23.3: not \p{L})
        "a\ua7ceb", "x\ua7cf", "\U00011db0\U00011db1", "\U000323b0\U000323b1", "\U00016ea0\U00016ea1",
        "\U0001e6c0\U0001e6c1", "\U00010940\U00010941",
        # combining marks newer than Unicode 9.0 next to older marks: canonical reordering differs
        "a\u0301\u1abf", "a\u1abf\u0301", "x\u0301\u1ac1", "x\u0301\u0c3c", "o\u0301\u1df6",
        "\u0915\u0301\u0d3b", "a\u0316\u07fd", "a\u0301\U0001e5ee", "e\u0301\U00010d69",
        # canonical compositions added after Unicode 9.0 (HF leaves them decomposed)
        "\U00011935\U00011930", "\U00011938", "\U0001611e\U0001611e", "\U00016121", "\U00016d67\U00016d67",
        "\U00016d68", "\U000105d2\u0307", "\U000105c9", "\U00011382\U000113c9", "\U00011383",
    ]
    for s in fixed:
        c.add(s)


def sec_repeats(c, rng):
    c.section("repeats")
    units = ["a", "ab", "abc", "!", "=", "-", "*", "_", ".", "中", "の", "한", "😀", "é", "0", "12", "ha", "la ",
             "\u200b", "'s", "..", "\\", "/", "#", "~", "<", ">", "^", "x ", "\t", "\u00a0"]
    for u in units:
        for n in [2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 64]:
            c.add(u * n)


def sec_fuzz(c, rng):
    c.section("fuzz")
    atoms = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
        + [" ", " ", " ", "  ", "\t", "\n", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2003", "\u200b", "\u0085"]
        + ["'s", "'S", "'t", "'re", "'ve", "'M", "'ll", "'D", "'ſ", "’s"]
        + SPECIAL_TOKENS[:6] + ["<think>", "</think>", "<|im_sta", "|>", "<|"]
        + ["中", "文", "日本", "語", "한국", "の", "ア", "é", "e\u0301", "\u0301", "ß", "ſ", "İ", "ı", "Ω", "\u212a"]
        + ["😀", "👍🏽", "🇯🇵", "1️⃣", "👨‍👩‍👧", "\ufe0f", "\u200d"]
        + ["²", "½", "①", "٣", "३", "Ⅻ", "０", "١٢"]
        + ["\x00", "\x1f", "\x7f", "\ufffd", "\U0010ffff", "\ue000"]
    )
    for _ in range(400):
        n = rng.randint(1, 60)
        c.add("".join(rng.choice(atoms) for _ in range(n)))


def sec_long(c, rng):
    c.section("long_lines")
    # 2-5 KB lines of various kinds
    def build(pool, target, sep):
        out = ""
        while len(out.encode("utf-8")) < target:
            out += rng.choice(pool) + sep
        return out
    c.add(build(ENGLISH, 2500, " "))
    c.add(build(ENGLISH, 5000, "\n"))
    c.add(build(CHINESE_SIMPLIFIED + CHINESE_PROMPTS, 4000, ""))
    c.add(build(JAPANESE + KOREAN, 3000, " "))
    c.add(build(CODE, 4500, "\n"))
    c.add(build(EMOJI_SIMPLE + EMOJI_ZWJ + FLAGS, 2500, ""))
    c.add(", ".join(rng.choice(PROMPT_DETAILS) for _ in range(120)))
    c.add(" " * 3000)
    c.add("a" * 2048)
    c.add("\n" * 2100)
    c.add("0123456789" * 250)
    c.add(build(SPECIAL_TOKENS + ["text", " ", "\n", "中文"], 2500, ""))
    c.add(build(NUMBERS_FIXED, 2600, " "))


def make(out_dir):
    c = Corpus()
    # Each section gets its own RNG so that editing one section does not change the others.
    sections = [
        (sec_english, 1), (sec_prompts, 2), (sec_cjk, 3), (sec_emoji, 4), (sec_numbers, 5),
        (sec_whitespace, 6), (sec_code, 7), (sec_urls, 8), (sec_contractions, 9), (sec_special, 10),
        (sec_nfc, 11), (sec_scripts, 12), (sec_math_punct, 13), (sec_mixed, 14), (sec_controls, 15),
        (sec_unicode_versions, 16), (sec_repeats, 17), (sec_fuzz, 18), (sec_long, 19),
    ]
    for fn, seed in sections:
        fn(c, random.Random(20261127 + seed))
    c.finish()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "corpus.jsonl")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for s in c.lines:
            f.write(sanitize_line(s) + "\n")
    with open(os.path.join(out_dir, "corpus_sections.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump({"lines": len(c.lines), "sections": c.sections}, f, indent=1)
        f.write("\n")
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "Tests", "Fixtures", "tokenizer"))
    args = ap.parse_args()
    c = make(args.out)
    nbytes = sum(len(s.encode("utf-8")) for s in c.lines)
    print(f"wrote {len(c.lines)} lines ({nbytes} bytes of text) to {args.out}/corpus.jsonl")
    for s in c.sections:
        print(f"  {s['name']:<24} {s['end'] - s['start']:>5} lines")
    if len(c.lines) < 2400:
        sys.exit("corpus too small")


if __name__ == "__main__":
    main()
