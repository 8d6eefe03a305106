"""Vocabulary for the generated corpus: Arabic words taken from the seed article, English news words,
category names and the site chrome the seed's scraper left at the end of every article."""

ARABIC = """
زيارة مسؤول أمني روسي تزامنًا مع التهديدات الأميركية وصل الأمين العام لمجلس الأمن إلى يوم الاثنين وفقًا
لوكالات الأنباء الروسية والإيرانية وذلك في ظل مخاوف من تصاعد الحرب المنطقة بعد اغتيال القائد السياسي
الأسبوع الماضي تجمع البلدين تحالفًا يتزايد منذ الأزمة وتصاعد الضغوط الغربية على بسبب الملف ودعمها مناطق
متعددة المتوقع أن يناقش الذي شغل سابقًا منصب وزير الدفاع الرئيس الجديد وكبار المسؤولين العسكريين والأمنيين
تعزيز التعاون الثنائي مجالات بما ذلك الأمن لوكالة وتأتي تلبية لدعوة نظيره للمجلس الأعلى للأمن القومي ما
ذكرت وكالة للأنباء فيما فهم انه رسالة قوية للولايات المتحدة التي عززت تواجدها العسكري وتهديدات بالرد
وأرسلت الولايات قوات بحرية جديدة فيها حاملة الطائرات اضافة لعدد والسفن لرفع التأهب عدد القواعد لمواجهة
اي هجوم ووكلائها وقالت الوكالة إن الزيارة هدفها التواصل وبحث القضايا الإقليمية والدولية والعلاقات الأمنية
والسياسية الثنائية ودانت بشدة الشهر واعتبرته مهددا والاستقرار واعتبر حليفا استراتيجيا مهما تأكيد استمرار
التحالف بينهما مواجهة القوى السابق سعى طيلة عهدته لتعزيز العلاقات مختلف المجالات المجال وعارضت كل
سياسة خارجية مضرة مسعى لإقامة بنظام عالمي متعدد الأقطاب أكثر عدالة تصف هذا بانه الدوليين وأجرى السنوات
الاخيرة مناورات عسكرية الجيشين وهو اثار قلق زود الجيش بمعدات متطورة وتتهم بدعم حربها ضد خلال عقد اتفاقيات
تسعى عقوباتها عدم التزامها بتعهداتها المضي تطوير واستخدمت بكثافة رخيصة الثمن لاستهداف المواقع والمنشئات
النفطية دفع الغرب لفرض مزيد العقوبات وفي شنت ردا الطيران حيث تم بفضل الدعم أجرت عملية واسعة قيادة وعينت
وعندما كان وزيرا زار سلفه مجلس أواخر الحكومة البرلمان الاقتصاد السوق الأسعار المدينة الشركات المشروع
الطلاب الجامعة المستشفى الصحة المياه الطاقة الملعب الفريق المباراة البطولة الثقافة المهرجان الكتاب
""".split()

ENGLISH = """
the of and to in a on for with at by from as that said will after over its has have was were their new
government minister officials council city region country week month year plan report agency talks
meeting security economic market prices growth trade energy water health hospital school university
students team match season league final club coach players festival museum book film music artists
research scientists study data project system network company companies investors bank rates budget
parliament election vote law court police public local national international regional support
against between during under while before since about more most than also would could should may
announced expected increase reduced agreed warned visit president leaders officials statement
policy reform services transport roads rail airport port workers jobs wages farmers harvest rain
weather climate storm coast border forces defence talks peace deal partners funding grants
""".split()

# (Arabic names, English names): categories are filled from these in turn.
CATEGORIES_AR = ("سياسة", "اقتصاد", "رياضة", "ثقافة", "تكنولوجيا", "صحة", "منوعات", "علوم", "تعليم", "بيئة")
CATEGORIES_EN = ("World", "Business", "Science", "Opinion", "Travel", "Sport", "Culture", "Health", "Education", "Climate")

TAGS_AR = ("عاجل", "تقرير", "حوار", "تحليل", "متابعة", "خاص", "صور", "فيديو")
TAGS_EN = ("breaking", "analysis", "interview", "report", "explainer", "feature", "photos", "video")
AUTHORS_AR = ("غرفة الأخبار", "مراسلنا", "القسم الاقتصادي", "القسم الرياضي")
AUTHORS_EN = ("Newsroom", "Staff Reporter", "Business Desk", "Science Desk")

CHROME_AR = ("تابعونا على", "اظهر المزيد", "", "مقالات ذات صلة", "", "اترك تعليقاً", "",
             "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ *", "", "زر الذهاب إلى الأعلى")
CHROME_EN = ("Follow us on", "Show More", "", "Related Articles", "", "Leave a Reply", "",
             "Your email address will not be published. Required fields are marked *", "", "Back to top button")
