# Writes testdata/mail/*.eml and *.json from the documented relay shapes.
import base64, quopri, json, hashlib, os, sys
from email.header import Header
out = sys.argv[1]

MARK_BEGIN = "------------- Begin message -------------"
MARK_END = "------------- End message -------------"
MARK_NEW = "------------- Message: -------------"
FOOTER = """For Your Information: To help arrive at a successful resolution, please respond to this message within 24 hours.

Was this email helpful?
https://sellercentral.amazon.{tld}/messaging/inbox?t=ABCDEF123&f=1

Copyright 2026 Amazon, Inc. or its affiliates. All rights reserved.
[commMgrTok:A2XYZ{n}B3C4D5E6F7]"""

cases = []
def case(**k): cases.append(k)

# lang: (subject phrase pattern, order label, item prefix)
L = {
 "en": ("{topic} inquiry from Amazon customer {name} (Order: {order})", "Order ID: {order}", "1 of"),
 "fr": ("{topic} : Demande de renseignements de la part du client Amazon {name} (Commande : {order})", "Numéro de commande : {order}", "1 sur"),
 "de": ("{topic}: Anfrage von Amazon-Kunde {name} (Bestellung: {order})", "Bestellnummer: {order}", "1 von"),
 "it": ("{topic}: Richiesta dal cliente Amazon {name} (Ordine: {order})", "Numero ordine: {order}", "1 di"),
 "es": ("{topic}: Consulta del cliente de Amazon {name} (Pedido: {order})", "Número de pedido: {order}", "1 de"),
 "nl": ("{topic}: Vraag van Amazon-klant {name} (Bestelling: {order})", "Bestelnummer: {order}", "1 van"),
 "sv": ("{topic}: Förfrågan från Amazon-kunden {name} (Beställning: {order})", "Ordernummer: {order}", "1 av"),
 "pl": ("{topic}: Zapytanie od klienta Amazon {name} (Zamówienie: {order})", "Numer zamówienia: {order}", "1 z"),
 "tr": ("{topic}: Amazon müşterisi {name} tarafından gönderilen soru (Sipariş: {order})", "Sipariş numarası: {order}", "1 adet"),
 "ja": ("{topic}: Amazonのお客様 {name} からのお問い合わせ（注文番号: {order}）", "注文番号: {order}", "1 点"),
}

def relay(name, tld, lang, buyer, alias, order, topic, words, charset="utf-8", cte="quoted-printable",
          form="classic", html=False, attachments=(), quoted=None, msgid=True, note="", ca_bilingual=False,
          subject=None, expect_topic=None, expect_name=None, expect_lang=None):
    case(kind="relay", name=name, tld=tld, lang=lang, buyer=buyer, alias=alias, order=order, topic=topic,
         words=words, charset=charset, cte=cte, form=form, html=html, attachments=list(attachments),
         quoted=quoted, msgid=msgid, note=note, ca=ca_bilingual, subject=subject, expect_topic=expect_topic,
         expect_name=expect_name, expect_lang=expect_lang)

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

relay("en-us-utf8-qp", "com", "en", "Jane Doe", "abc123def456ghi@marketplace.amazon.com", "111-2223334-5556667", "Shipping",
      "Hi, my package says delivered but I can't find it.\nCould you check with the carrier?\n\nThanks, Jane")
relay("en-gb-base64", "co.uk", "en", "Oliver Smith", "x9y8z7w6v5@marketplace.amazon.co.uk", "204-1234567-7654321", "Product details",
      "Does this kettle come with a UK plug? £30 seems a fair price.", cte="base64")
relay("en-ie-8bit", "ie", "en", "Siobhán Murphy", "siob4a1@marketplace.amazon.ie", "403-7777777-1111111", "Delivery",
      "When will my order arrive in Galway?", cte="8bit")
relay("fr-fr-iso88591-qp", "fr", "fr", "Amélie Poulain", "q1w2e3r4t5@marketplace.amazon.fr", "402-3456789-1234567", "Expédition",
      "Bonjour,\nje n'ai toujours pas reçu ma commande. Pouvez-vous vérifier où elle en est ?\nMerci d'avance,\nAmélie", charset="iso-8859-1")
relay("fr-fr-iso885915-euro", "fr", "fr", "Loïc Lefèvre", "loic77@marketplace.amazon.fr", "402-1111111-2222222", "Retour",
      "L'article coûte 49 € mais j'ai été débité de 59 €. Œuvre d'un bug ?", charset="iso-8859-15")
relay("de-de-windows1252-qp", "de", "de", "Jürgen Müller", "m7n8b9v0c1@marketplace.amazon.de", "303-9876543-2109876", "Versand",
      "Guten Tag,\ndas Paket kam beschädigt an – die Verpackung war völlig zerdrückt. „Schade“, aber bitte um Ersatz.\nGrüße", charset="windows-1252")
relay("it-it-utf8-base64", "it", "it", "Giulia Rossi", "g1u2l3i4a5@marketplace.amazon.it", "404-2222222-3333333", "Spedizione",
      "Buongiorno, è possibile modificare l'indirizzo di consegna? Grazie mille.", cte="base64")
relay("es-es-iso88591-qp", "es", "es", "José Martínez", "jose99@marketplace.amazon.es", "405-4444444-5555555", "Devolución",
      "Hola, ¿cómo puedo devolver el artículo? Llegó pequeño.\nGracias", charset="iso-8859-1")
relay("nl-nl-utf8-qp", "nl", "nl", "Daan de Vries", "daan.dv@marketplace.amazon.nl", "406-6666666-7777777", "Levering",
      "Goedemiddag, mijn bestelling is nog niet geleverd. Kunt u dit nagaan?")
relay("sv-se-iso88591-qp", "se", "sv", "Åsa Öberg", "asa.ob@marketplace.amazon.se", "407-8888888-9999999", "Leverans",
      "Hej! Paketet har inte kommit än. Kan ni kolla spårningen åt mig?", charset="iso-8859-1")
relay("pl-pl-utf8-base64", "pl", "pl", "Zażółć Gęślą", "zgj@marketplace.amazon.pl", "408-1212121-3434343", "Zwrot",
      "Dzień dobry, chciałbym zwrócić produkt. Jak to zrobić?", cte="base64")
relay("fr-be-utf8-qp", "com.be", "fr", "Lucie Dubois", "lucie.db@marketplace.amazon.com.be", "409-5656565-7878787", "Livraison",
      "Bonjour, livrez-vous aussi à Liège ? Merci.")
relay("nl-be-utf8-qp", "com.be", "nl", "Lotte Peeters", "lotte.p@marketplace.amazon.com.be", "409-1010101-2020202", "Levering",
      "Hallo, komt de levering nog deze week naar Gent?", expect_lang="nl")
relay("tr-tr-utf8-qp", "com.tr", "tr", "Ayşe Yılmaz", "ayse.y@marketplace.amazon.com.tr", "410-3030303-4040404", "Kargo",
      "Merhaba, siparişim ne zaman kargoya verilecek? Teşekkürler.")
relay("ja-jp-shiftjis-base64", "co.jp", "ja", "山田 太郎", "yamada.t@marketplace.amazon.co.jp", "503-1234567-8901234", "配送",
      "お世話になっております。\n商品がまだ届いておりません。配送状況を確認していただけますか。\nよろしくお願いいたします。", charset="shift_jis", cte="base64")
relay("ja-jp-iso2022jp-7bit", "co.jp", "ja", "佐藤 花子", "sato.h@marketplace.amazon.co.jp", "503-7654321-1098765", "返品",
      "返品の手続き方法を教えてください。サイズが合いませんでした。", charset="iso-2022-jp", cte="7bit")
relay("en-ca-bilingual", "ca", "en", "Émilie Tremblay", "emilie.t@marketplace.amazon.ca", "701-1234567-1234567", "Shipping",
      "Bonjour, my order hasn't shipped yet. Pouvez-vous m'aider?", ca_bilingual=True)
relay("es-mx-utf8", "com.mx", "es", "Carlos López", "carlos.l@marketplace.amazon.com.mx", "701-7654321-7654321", "Envío",
      "¿Cuándo llega mi pedido a Guadalajara?")
# Shapes: newer marker, no marker, html only, attachments, reply quoting, plus alias, no Message-ID.
relay("en-us-newer-marker", "com", "en", "Mark Twain", "mt1835@marketplace.amazon.com", "112-3456789-0123456", "Order",
      "Can I change the colour to blue before it ships?", form="new")
relay("fr-fr-no-marker", "fr", "fr", "Claire Martin", "claire.m@marketplace.amazon.fr", "402-9999999-8888888", "Autre",
      "Bonjour, la facture est-elle disponible ?", form="none", note="no marker: the whole text is kept")
relay("de-de-html-only", "de", "de", "Anna Schmidt", "anna.s@marketplace.amazon.de", "303-1111111-2222222", "Produktdetails",
      "Hallo, passt das Ladekabel auch für ältere Modelle?\nDanke & Grüße", html=True)
relay("en-gb-html-only-base64-latin1", "co.uk", "en", "Harry Jones", "harry.j@marketplace.amazon.co.uk", "204-5555555-6666666", "Delivery",
      "Left with neighbour at no. 12? I wasn't told.", html=True, cte="base64", charset="iso-8859-1")
relay("en-us-attachment-photo", "com", "en", "Pat Lee", "pat.lee@marketplace.amazon.com", "113-1111111-2222222", "Damaged item",
      "The mug arrived cracked, photo attached.", attachments=[("photo.png", "image/png", PNG, "attachment")])
relay("fr-fr-attachment-pdf-inline-image", "fr", "fr", "Hélène Roux", "helene.r@marketplace.amazon.fr", "402-2323232-4545454", "Retour",
      "Voici la facture et une photo du colis.", attachments=[("facture.pdf", "application/pdf", PDF, "attachment"), ("colis.png", "image/png", PNG, "inline")])
relay("en-us-reply-quoting", "com", "en", "Jane Doe", "abc123def456ghi+k7@marketplace.amazon.com", "111-2223334-5556667", "Shipping",
      "Thanks, that works for me.", subject="RE: Shipping inquiry from Amazon customer Jane Doe (Order: 111-2223334-5556667)",
      quoted="On Tue, Dec 1, 2026 at 9:00 AM Seller Support <amazon.t1.us.abc@inbound.example> wrote:\n> Hi Jane, we have asked the carrier.\n> Best regards", expect_topic="Shipping")
relay("de-de-reply-quoting-de", "de", "de", "Jürgen Müller", "m7n8b9v0c1+a1@marketplace.amazon.de", "303-9876543-2109876", "Versand",
      "Danke, Ersatz ist angekommen.", quoted="Am 01.12.2026 um 10:00 schrieb Händler <amazon.t.de.x@inbound.example>:\n> Wir senden Ersatz.")
relay("en-us-no-order", "com", "en", "Sam Green", "sam.g@marketplace.amazon.com", "", "Product details",
      "Do you sell this in size XL?", subject="Product details inquiry from Amazon customer Sam Green",
      note="no order id: threads by the buyer's alias")
relay("en-us-no-message-id", "com", "en", "Kim Park", "kim.p@marketplace.amazon.com", "114-1231231-3213213", "Shipping",
      "Is express shipping possible?", msgid=False, note="no Message-ID: externalId falls back to SES's messageId")

def notice(name, frm, tld, subject, body, kind, order, buyer="", lang="en", mp=None, headers="", reason="", alias="", note="", from_name="Amazon"):
    case(kind="notice", name=name, frm=frm, tld=tld, subject=subject, body=body, nkind=kind, order=order, buyer=buyer, lang=lang,
         mp=mp or tld, headers=headers, reason=reason, alias=alias, note=note, from_name=from_name)

notice("notice-cancellation-en-us", "donotreply@amazon.com", "com", "Cancellation request for order 114-5555555-6666666",
       "Dear Seller,\n\nThe buyer has requested to cancel order 114-5555555-6666666.\nBuyer name: Alex Kim\nReason: No longer needed\n\nPlease cancel the order in Seller Central if it has not shipped.",
       "CANCELLATION_REQUEST", "114-5555555-6666666", "Alex Kim")
notice("notice-cancellation-fr", "donotreply@amazon.fr", "fr", "Demande d'annulation de la commande 402-7878787-9090909",
       "Bonjour,\n\nL'acheteur a demandé l'annulation de la commande 402-7878787-9090909.\nNom de l'acheteur : Paul Girard\nMotif : Commandé par erreur",
       "CANCELLATION_REQUEST", "402-7878787-9090909", "Paul Girard", "fr")
notice("notice-return-de", "donotreply@amazon.de", "de", "Rücksendeanfrage für Bestellung 303-4545454-5656565",
       "Hallo,\n\nein Käufer hat eine Rücksendung angefordert.\nBestellnummer: 303-4545454-5656565\nName des Käufers: Eva Braun-Weiß\nGrund: Artikel defekt",
       "RETURN_REQUEST", "303-4545454-5656565", "Eva Braun-Weiß", "de")
notice("notice-atoz-en-gb", "atoz-guarantee-no-reply@amazon.co.uk", "co.uk", "A-to-z Guarantee claim on order 204-9090909-1010101",
       "Dear Seller,\n\nA buyer has filed an A-to-z Guarantee claim.\nOrder ID: 204-9090909-1010101\nCustomer name: Tom Baker\nReason: Item not received\n\nPlease respond within 3 days.",
       "ATOZ_CLAIM", "204-9090909-1010101", "Tom Baker")


# Round 2 (issue 23): buyers answering in their own mail client. Amazon
# relays the whole text between its markers, the client's quote included;
# each separator is the client's default in that language (Outlook's header
# block, Gmail's attribution wrapped over two lines, Apple Mail's, the
# Thunderbird "-------- Original Message --------" line that five-dash
# marker matching took for Amazon's marker, mobile signatures).
relay("en-gb-enquiry-outlook", "co.uk", "en", "Oliver Smith", "x9y8z7w6v5@marketplace.amazon.co.uk", "204-1234567-7654321", "Delivery",
      "Thanks, Thursday is fine.",
      subject="RE: Delivery enquiry from Amazon customer Oliver Smith (Order: 204-1234567-7654321)",
      quoted="________________________________\nFrom: Kettles Ltd <amazon.t1.gb.abc@inbound.example>\nSent: 01 December 2026 09:00\nTo: Oliver Smith - Amazon Marketplace <x9y8z7w6v5@marketplace.amazon.co.uk>\nSubject: Delivery enquiry from Amazon customer Oliver Smith (Order: 204-1234567-7654321)\n\nHello Oliver, can we deliver on Thursday?",
      note="British subject ('enquiry'); Outlook desktop's underscore line and header block")
relay("en-us-reply-thunderbird", "com", "en", "Jane Doe", "abc123def456ghi@marketplace.amazon.com", "111-2223334-5556667", "Shipping",
      "Yes please, send the replacement.", form="new",
      quoted="-------- Original Message --------\nSubject: Shipping inquiry\nDate: Tue, 1 Dec 2026 09:00:00 +0000\nFrom: Seller Support <amazon.t1.us.abc@inbound.example>\nTo: abc123def456ghi@marketplace.amazon.com\n\nShall we send a replacement?",
      note="Thunderbird's forward separator (8 dashes) after the newer single marker")
relay("en-us-reply-outlook-plain", "com", "en", "Pat Lee", "pat.lee@marketplace.amazon.com", "113-1111111-2222222", "Damaged item",
      "A refund is better for me.",
      quoted="-----Original Message-----\nFrom: Mugs Inc <amazon.t1.us.m@inbound.example>\nSent: Tuesday, December 1, 2026 9:00 AM\nTo: pat.lee@marketplace.amazon.com\nSubject: Damaged item\n\nRefund or replacement?",
      note="Outlook's plain-text separator")
relay("fr-fr-reply-outlook-fr", "fr", "fr", "Amélie Poulain", "q1w2e3r4t5@marketplace.amazon.fr", "402-3456789-1234567", "Expédition",
      "Merci, je l'ai bien reçue ce matin.",
      quoted="De : Boutique <amazon.t1.fr.abc@inbound.example>\nEnvoyé : mardi 1 décembre 2026 09:00\nÀ : q1w2e3r4t5@marketplace.amazon.fr\nObjet : RE: Expédition\n\nBonjour, le colis est en route.",
      note="Outlook's header block in French (De / Envoyé / À / Objet)")
relay("fr-fr-reply-samsung", "fr", "fr", "Claire Martin", "claire.m@marketplace.amazon.fr", "402-9999999-8888888", "Autre",
      "D'accord, merci beaucoup.",
      quoted="Envoyé depuis mon smartphone Samsung Galaxy.\n\n-------- Message d'origine --------\nDe : Boutique <amazon.t1.fr.abc@inbound.example>\nDate : 01/12/2026 09:00 (GMT+01:00)\nÀ : claire.m@marketplace.amazon.fr\nObjet : Facture\n\nLa facture est jointe.",
      note="Samsung Email: signature, then its dashed separator")
relay("de-de-reply-thunderbird-de", "de", "de", "Anna Schmidt", "anna.s@marketplace.amazon.de", "303-1111111-2222222", "Produktdetails",
      "Super, dann bestelle ich noch eins.",
      quoted="-------- Ursprüngliche Nachricht --------\nBetreff: Produktdetails\nDatum: 01.12.2026 09:00\nVon: Händler <amazon.t1.de.abc@inbound.example>\nAn: anna.s@marketplace.amazon.de\n\nJa, es passt für ältere Modelle.",
      note="Thunderbird's German separator")
relay("de-de-reply-iphone", "de", "de", "Jürgen Müller", "m7n8b9v0c1@marketplace.amazon.de", "303-9876543-2109876", "Versand",
      "Alles klar, danke!",
      quoted="Von meinem iPhone gesendet\n\n> Am 01.12.2026 um 09:00 schrieb Händler <amazon.t.de.x@inbound.example>:\n>\n> Ersatz ist unterwegs.",
      note="iPhone Mail: signature, then a quoted attribution")
relay("it-it-reply-gmail-wrapped", "it", "it", "Giulia Rossi", "g1u2l3i4a5@marketplace.amazon.it", "404-2222222-3333333", "Spedizione",
      "Perfetto, grazie mille!",
      quoted="Il giorno mar 1 dic 2026 alle ore 09:00 Negozio Roma <\namazon.t1.it.abc@inbound.example> ha scritto:\n\n> Buongiorno, l'indirizzo è stato modificato.",
      note="Gmail's Italian attribution wrapped over two lines")
relay("es-es-reply-apple", "es", "es", "José Martínez", "jose99@marketplace.amazon.es", "405-4444444-5555555", "Devolución",
      "Vale, lo envío mañana.",
      quoted="Enviado desde mi iPhone\n\nEl 1 dic 2026, a las 9:00, Tienda <amazon.t1.es.abc@inbound.example> escribió:\n\n> Hola José, puede devolverlo.",
      note="Apple Mail (iPhone) in Spanish")
relay("nl-nl-reply-outlook-nl", "nl", "nl", "Daan de Vries", "daan.dv@marketplace.amazon.nl", "406-6666666-7777777", "Levering",
      "Bedankt, het is vandaag aangekomen.",
      quoted="Van: Winkel <amazon.t1.nl.abc@inbound.example>\nVerzonden: dinsdag 1 december 2026 09:00\nAan: daan.dv@marketplace.amazon.nl\nOnderwerp: Levering\n\nUw pakket is onderweg.",
      note="Outlook's header block in Dutch")
relay("sv-se-reply-gmail", "se", "sv", "Åsa Öberg", "asa.ob@marketplace.amazon.se", "407-8888888-9999999", "Leverans",
      "Tack, paketet har kommit.",
      quoted="Den tis 1 dec. 2026 kl 09:00 skrev Butik <amazon.t1.se.abc@inbound.example>:\n\n> Paketet är på väg.",
      note="Gmail in Swedish")
relay("pl-pl-reply-gmail", "pl", "pl", "Zażółć Gęślą", "zgj@marketplace.amazon.pl", "408-1212121-3434343", "Zwrot",
      "Dziękuję, odeślę jutro.",
      quoted="wt., 1 gru 2026 o 09:00 Sklep <amazon.t1.pl.abc@inbound.example> napisał(a):\n\n> Proszę odesłać produkt.",
      note="Gmail in Polish")
relay("tr-tr-reply-gmail", "com.tr", "tr", "Ayşe Yılmaz", "ayse.y@marketplace.amazon.com.tr", "410-3030303-4040404", "Kargo",
      "Teşekkürler, ulaştı.",
      quoted="Mağaza <amazon.t1.tr.abc@inbound.example>, 1 Ara 2026 Sal, 09:00 tarihinde şunu yazdı:\n\n> Siparişiniz kargoya verildi.",
      note="Gmail in Turkish")
relay("ja-jp-reply-gmail", "co.jp", "ja", "山田 太郎", "yamada.t@marketplace.amazon.co.jp", "503-1234567-8901234", "配送",
      "ありがとうございます。受け取りました。",
      quoted="2026年12月1日(火) 9:00 ショップ <amazon.t1.jp.abc@inbound.example>:\n\n> 発送いたしました。",
      note="Gmail in Japanese")

# Amazon's notices from an address that serves every marketplace: the
# marketplace and language from the mail itself (its text's language, the
# store it names, Content-Language), not from donotreply@amazon.com.
notice("notice-cancellation-fr-from-com", "donotreply@amazon.com", "com", "Demande d'annulation de la commande 402-7878787-1212121",
       "Bonjour,\n\nL'acheteur a demandé l'annulation de la commande 402-7878787-1212121.\nNom de l'acheteur : Paul Girard\nMotif : Commandé par erreur\n\nVeuillez annuler la commande si elle n'a pas encore été expédiée.",
       "CANCELLATION_REQUEST", "402-7878787-1212121", "Paul Girard", "fr", mp="fr",
       note="the shared sender, a French text: Amazon.fr in French")
notice("notice-return-en-gb-store-link", "donotreply@amazon.com", "com", "Return request for order 204-5656565-7878787",
       "Dear Seller,\n\nA buyer has requested a return.\nOrder ID: 204-5656565-7878787\nBuyer name: Tom Baker\nReason: the item could not be delivered on time\n\nManage the return: https://sellercentral.amazon.co.uk/returns?orderId=204-5656565-7878787 or on www.amazon.co.uk.",
       "RETURN_REQUEST", "204-5656565-7878787", "Tom Baker", "en", mp="co.uk",
       note="the shared sender, English: the store the text names (amazon.co.uk); a parcel 'could not be delivered' is no outgoing notice")
notice("notice-cancellation-it-content-language", "donotreply@amazon.com", "com", "Richiesta di annullamento ordine 404-1212121-5656565",
       "Gentile venditore,\n\nl'acquirente ha chiesto l'annullamento dell'ordine 404-1212121-5656565.\nNome dell'acquirente: Marco Bianchi",
       "CANCELLATION_REQUEST", "404-1212121-5656565", "Marco Bianchi", "it", mp="it", headers="Content-Language: it-IT\r\n",
       note="Content-Language (RFC 3282) names the country")

# Notices about the seller's OUTGOING messages. The English wording is
# Amazon's as published by sellers' tools (opt-out: Viral Launch, Counting
# On Sales, Egility, 2017; guidelines: Seller Labs' support article;
# rejected sender: Seller Central help 201054220); the senders, the subjects
# and the other languages are our assumption.
notice("outgoing-optout-en-us", "donotreply@amazon.com", "com", "Message delivery failure",
       "Dear Seller,\n\nWe were unable to deliver the message you sent for order [111-4444444-5555555] because the buyer has chosen to opt out of receiving unsolicited messages from sellers.\n\nHowever, even if a buyer has opted out of unsolicited messages, if you need to send them a message critical to completing his or her order, you can do it using Buyer-Seller Messaging.",
       "OUTGOING_NOTICE", "111-4444444-5555555", "", "en", reason="BUYER_OPTED_OUT", alias="")
notice("outgoing-guidelines-en-gb", "seller-notification@amazon.co.uk", "co.uk", "Your message was not sent",
       "Dear Seller,\n\nThis message was not sent as it did not meet the Buyer-Seller Messaging communication guidelines.\nOrder ID: 204-1234567-7654321\nTo: x9y8z7w6v5@marketplace.amazon.co.uk\n\nPlease review the guidelines and send it again.",
       "OUTGOING_NOTICE", "204-1234567-7654321", "", "en", reason="CONTENT_REFUSED", alias="x9y8z7w6v5@marketplace.amazon.co.uk")
notice("outgoing-sender-not-approved-de", "donotreply@amazon.de", "de", "Ihre Nachricht wurde nicht zugestellt",
       "Hallo,\n\nIhre Nachricht an m7n8b9v0c1+a1@marketplace.amazon.de zur Bestellung 303-9876543-2109876 wurde abgelehnt, da sie von einer nicht autorisierten E-Mail-Adresse gesendet wurde.\nGenehmigen Sie die Adresse unter Einstellungen > Nachrichtenberechtigungen und senden Sie die Nachricht erneut.",
       "OUTGOING_NOTICE", "303-9876543-2109876", "", "de", reason="SENDER_NOT_APPROVED", alias="m7n8b9v0c1+a1@marketplace.amazon.de")
notice("outgoing-delivery-failure-fr", "no-reply@amazon.fr", "fr", "Échec de remise du message",
       "Bonjour,\n\nVotre message n'a pas pu être remis à l'acheteur (commande 402-3456789-1234567, destinataire q1w2e3r4t5@marketplace.amazon.fr).\nVeuillez réessayer plus tard.",
       "OUTGOING_NOTICE", "402-3456789-1234567", "", "fr", reason="DELIVERY_FAILED", alias="q1w2e3r4t5@marketplace.amazon.fr")

def hostile(name, raw, note, expect):
    case(kind="hostile", name=name, raw=raw, note=note, expect=expect)

hostile("hostile-not-amazon", """From: "Jane Doe - Amazon Marketplace" <jane@example.com>
To: amazon.t1.us.k@inbound.example
Subject: Shipping inquiry from Amazon customer Jane Doe (Order: 111-2223334-5556667)
Message-ID: <fake1@example.com>
Date: Tue, 01 Dec 2026 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

------------- Begin message -------------
Click here to verify your account.
------------- End message -------------
""", "display name imitates the relay, address is not Amazon's", {"error": "not_amazon"})
hostile("hostile-lookalike-domain", """From: "Jane Doe - Amazon Marketplace" <a1@marketplace.amazon.fr.evil.example>
To: amazon.t1.fr.k@inbound.example
Subject: Expedition
Message-ID: <fake2@evil.example>
Date: Tue, 01 Dec 2026 10:00:00 +0000
Content-Type: text/plain; charset=utf-8

hello
""", "a domain that merely starts with marketplace.amazon.fr", {"error": "not_amazon"})
hostile("hostile-no-from", """To: amazon.t1.fr.k@inbound.example
Subject: nothing
Content-Type: text/plain

body
""", "no From header", {"error": "malformed"})
hostile("hostile-garbage", "\x00\x01\x02 not a mail at all", "binary garbage", {"error": "malformed"})
hostile("hostile-unknown-charset", """From: "Jo - Amazon Marketplace" <jo@marketplace.amazon.com>
To: amazon.t1.us.k@inbound.example
Subject: Shipping inquiry from Amazon customer Jo (Order: 111-0000000-0000001)
Message-ID: <uc1@amazonses.com>
Date: Tue, 01 Dec 2026 10:00:00 +0000
Content-Type: text/plain; charset=x-made-up
Content-Transfer-Encoding: 8bit

------------- Begin message -------------
Caf\xe9 please
------------- End message -------------
""", "an unknown charset is read as windows-1252, not dropped", {"words": "Café please", "orderId": "111-0000000-0000001", "kind": "BUYER_MESSAGE"})

def enc_body(text, charset, cte):
    b = text.replace("\n", "\r\n").encode(charset)
    if cte == "quoted-printable":
        return quopri.encodestring(b).decode("ascii")
    if cte == "base64":
        s = base64.b64encode(b).decode("ascii")
        return "\r\n".join(s[i:i+76] for i in range(0, len(s), 76))
    return b.decode(charset, errors="strict") if charset in ("utf-8",) else b

def hdr(s, charset="utf-8"):
    try:
        s.encode("ascii"); return s
    except UnicodeEncodeError:
        pass
    try:
        s.encode(charset)
    except (UnicodeEncodeError, LookupError):
        charset = "utf-8"
    return Header(s, charset).encode(maxlinelen=998)

MP = {"com":"ATVPDKIKX0DER","co.uk":"A1F83G8C2ARO7P","ie":"A28R8C7NBKEWEA","fr":"A13V1IB3VIYZZH","de":"A1PA6795UKMFR9","it":"APJ6JRA9NG5V4","es":"A1RKKUPIHCS9HS","nl":"A1805IZSGTT6HS","se":"A2NODRKZP88ZB9","pl":"A1C3SOZRARQ6R3","com.be":"AMEN7PMS3EDWL","com.tr":"A33AVAJ2PDY3EV","co.jp":"A1VC38T7YXB528","ca":"A2EUQ1WTGCTBG2","com.mx":"A1AM78C64UM0Y8"}

n = 0
for c in cases:
    n += 1
    name = c["name"]
    exp = {"name": name}
    if c["kind"] == "hostile":
        raw = c["raw"].replace("\n", "\r\n").encode("latin-1")
        exp.update(c["expect"]); exp["note"] = c["note"]
    elif c["kind"] == "notice":
        body = c["body"] + "\n\n" + FOOTER.format(tld=c["tld"], n=n)
        raw = ("From: %s <%s>\r\nTo: amazon.tenant-a.%s.k@inbound.example\r\nSubject: %s\r\nMessage-ID: <0100018c%04d.notice@email.amazonses.com>\r\nDate: Tue, 01 Dec 2026 10:%02d:00 +0000\r\nMIME-Version: 1.0\r\n%sContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" % (
            c["from_name"], c["frm"], c["tld"].split(".")[-1], hdr(c["subject"]), n, n % 60, c["headers"])).encode() + enc_body(body, "utf-8", "quoted-printable").encode()
        exp.update(kind=c["nkind"], orderId=c["order"], buyerName=c["buyer"], language=c["lang"], messageId="0100018c%04d.notice@email.amazonses.com" % n,
                   wordsContains=c["body"].split("\n")[2].strip(), marketplaceId=MP[c["mp"]])
        if c["reason"]:
            exp.update(noticeReason=c["reason"], noticeAlias=c["alias"])
        if c["note"]: exp["note"] = c["note"]
    else:
        lang = c["lang"]; sp, ol, item = L[lang]
        order = c["order"]
        subject = c["subject"] or sp.format(topic=c["topic"], name=c["buyer"], order=order)
        words = c["words"]
        text = ""
        if c["ca"]:
            text += "Order ID: %s\nNuméro de commande : %s\n%s Widget [ASIN: B0CANADA01]\n\n" % (order, order, item)
        elif order:
            text += ol.format(order=order) + "\n" + item + " Widget [ASIN: B0ABCDEF12]\n\n"
        msg = words + ("\n\n" + c["quoted"] if c["quoted"] else "")
        if c["form"] == "classic":
            text += MARK_BEGIN + "\n\n" + msg + "\n\n" + MARK_END + "\n\n"
        elif c["form"] == "new":
            text += MARK_NEW + "\n\n" + msg + "\n\n"
        else:
            text += msg + "\n\n"
        if c["form"] == "none":
            full = text.rstrip() + "\n"
        else:
            full = text + FOOTER.format(tld=c["tld"], n=n)
            if c["ca"]:
                full += "\nPour votre information : veuillez répondre à ce message dans les 24 heures."
        pass
        if c["html"]:
            esc = full.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            body_text = "<html><head><style>p{margin:0}</style><title>Amazon</title></head><body>" + "".join("<p>%s</p>" % l if l else "<br>" for l in esc.split("\n")) + "</body></html>"
            ctype = "text/html"
        else:
            body_text = full; ctype = "text/plain"
        charset, cte = c["charset"], c["cte"]
        name_hdr = hdr('%s - Amazon Marketplace' % c["buyer"], charset)
        if name_hdr == '%s - Amazon Marketplace' % c["buyer"]:
            name_hdr = '"%s"' % name_hdr
        h = "From: %s <%s>\r\nTo: amazon.tenant-a.%s.k@inbound.example\r\nSubject: %s\r\n" % (name_hdr, c["alias"], c["tld"].split(".")[-1], hdr(subject, charset))
        mid = "0102018c%04d.relay-%s@eu-west-1.amazonses.com" % (n, name)
        if c["msgid"]:
            h += "Message-ID: <%s>\r\n" % mid
        h += "Date: Tue, 01 Dec 2026 09:%02d:00 +0000\r\nMIME-Version: 1.0\r\n" % (n % 60)
        if c["quoted"]:
            h += "In-Reply-To: <earlier-%d@inbound.example>\r\n" % n
        eb = enc_body(body_text, charset, cte)
        if isinstance(eb, str): eb = eb.encode(charset if cte == "8bit" else "ascii") if cte != "8bit" else eb.encode("utf-8")
        part = ("Content-Type: %s; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n" % (ctype, charset.upper() if charset != "shift_jis" else "Shift_JIS", cte)).encode() + eb
        if c["attachments"]:
            bnd = "----=_Part_%d_relay" % n
            raw = (h + "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n" % bnd).encode()
            raw += ("--%s\r\n" % bnd).encode() + part + b"\r\n"
            exp["attachments"] = []
            for fn, ct, data, disp in c["attachments"]:
                s = base64.b64encode(data).decode()
                raw += ("--%s\r\nContent-Type: %s; name=\"%s\"\r\nContent-Disposition: %s; filename=\"%s\"\r\nContent-Transfer-Encoding: base64\r\n%s\r\n%s\r\n" % (
                    bnd, ct, fn, disp, fn, ("Content-ID: <%s@relay>\r\n" % fn) if disp == "inline" else "", "\r\n".join(s[i:i+76] for i in range(0, len(s), 76)))).encode()
                exp["attachments"].append({"filename": fn, "contentType": ct, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "inline": disp == "inline"})
            raw += ("--%s--\r\n" % bnd).encode()
        elif not c["html"] and c["name"] in ("en-us-utf8-qp", "fr-fr-iso88591-qp", "ja-jp-shiftjis-base64"):
            # multipart/alternative with an HTML twin, as mailers send.
            bnd = "----=_Alt_%d" % n
            esc = full.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>\n")
            hp = ("Content-Type: text/html; charset=%s\r\nContent-Transfer-Encoding: %s\r\n\r\n" % (charset.upper() if charset != "shift_jis" else "Shift_JIS", cte)).encode()
            heb = enc_body("<html><body>" + esc + "</body></html>", charset, cte)
            hp += heb if isinstance(heb, bytes) else heb.encode("ascii")
            raw = (h + "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n" % bnd).encode() + ("--%s\r\n" % bnd).encode() + part + ("\r\n--%s\r\n" % bnd).encode() + hp + ("\r\n--%s--\r\n" % bnd).encode()
        else:
            raw = h.encode() + part
        mp = MP[c["tld"]]
        alias = c["alias"]; key = alias.split("+")[0] + ("@" + alias.split("@")[1] if "+" in alias else "")
        exp.update(kind="BUYER_MESSAGE", marketplaceId=mp, buyerName=c["expect_name"] or c["buyer"], buyerAlias=alias, buyerKey=key,
                   orderId=order, language=c["expect_lang"] or lang, topic=c["expect_topic"] or c["topic"], words=words if c["form"] != "none" else full.strip(),
                   marked=c["form"] != "none", fromHTML=c["html"], messageId=mid if c["msgid"] else "",
                   charset=charset, transferEncoding=cte)
        if order: exp["asin"] = "B0CANADA01" if c["ca"] else "B0ABCDEF12"
        if c["note"]: exp["note"] = c["note"]
    open(os.path.join(out, name + ".eml"), "wb").write(raw)
    open(os.path.join(out, name + ".json"), "w").write(json.dumps(exp, ensure_ascii=False, indent=2) + "\n")
print(n, "mails")
