<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an RSS 2.0 or Atom 1.0 feed as a readable page to a person who opens it in a browser.
     The page's direction follows the feed's language (RSS <language>, Atom xml:lang); each item's follows its own
     language (an Atom entry's xml:lang; an RSS item's dc:language, else its article body's <div dir lang>), else the
     feed's, so that an Arabic title beginning with a Latin word is still laid out right to left. XSLT 1.0: browsers do
     no other. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:content="http://purl.org/rss/1.0/modules/content/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom content dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <!-- Right-to-left languages and script subtags, each between spaces: the same as RTL_LANGUAGES and RTL_SCRIPTS in
       feedsvc/model.py (tests/test_feed_xsl.py fails when they differ). -->
  <xsl:variable name="rtl-languages" select="' ar fa ur he yi ps sd ckb dv ug arz ary arq apc acm ajp afb aeb apd ayl ars prs pnb skr sdh lrc mzn glk bal ks syr nqo iw ji arb pes ydd pbt pbu pst azb '"/>
  <xsl:variable name="rtl-scripts" select="' arab aran hebr thaa syrc nkoo adlm rohg '"/>

  <xsl:variable name="lang" select="normalize-space((/rss/channel/language | /atom:feed/@xml:lang)[1])"/>
  <xsl:variable name="dir">
    <xsl:call-template name="direction"><xsl:with-param name="tag" select="$lang"/></xsl:call-template>
  </xsl:variable>
  <xsl:variable name="title" select="string((/rss/channel/title | /atom:feed/atom:title)[1])"/>
  <xsl:variable name="self" select="string((/rss/channel/*[local-name()='link' and @rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href)[1])"/>
  <xsl:variable name="home" select="string((/rss/channel/link | /atom:feed/atom:link[@rel='alternate']/@href)[1])"/>

  <xsl:template match="/">
    <html lang="{$lang}">
      <xsl:attribute name="dir"><xsl:value-of select="$dir"/><xsl:if test="$dir = ''">ltr</xsl:if></xsl:attribute>
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body { font-family: system-ui, "Noto Naskh Arabic", Tahoma, sans-serif; line-height: 1.6; max-width: 46rem; margin-inline: auto; padding: 1rem; }
          .subscribe { background: #eef4ff; border: 1px solid #c9dafc; padding: .75rem 1rem; border-radius: .4rem; }
          .subscribe code { user-select: all; word-break: break-all; }
          ol { padding-inline: 0; } /* each item's number on its own start side: an English item in an Arabic list too */
          li { margin-block: .8rem; margin-inline-start: 2.5rem; text-align: start; } /* Firefox's li: match-parent */
          time { color: #555; font-size: .9em; }
        </style>
      </head>
      <body>
        <div class="subscribe" dir="auto">
          <p><strong>This is a web feed.</strong> To subscribe, copy this address into your feed reader:</p>
          <p dir="rtl" lang="ar"><strong>هذه صفحة خلاصة.</strong> للاشتراك، انسخ هذا العنوان إلى قارئ الخلاصات لديك:</p>
          <p dir="ltr"><code><xsl:value-of select="$self"/></code></p>
        </div>
        <h1><a href="{$home}"><xsl:value-of select="$title"/></a></h1>
        <p><xsl:value-of select="(/rss/channel/description | /atom:feed/atom:subtitle)[1]"/></p>
        <ol>
          <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
        </ol>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <!-- RSS has no element for an item's language: formats/rss.py writes a dc:language where it is not the channel's
         (https://www.dublincore.org/specifications/dublin-core/dcmi-terms/elements11/language/), the only place a
         summary-only feed (PUBLIC_CONTENT=summary) names it; a feed written before that names it only in the article
         body's wrapper (formats/content.py wrapped_html). -->
    <xsl:variable name="wrapper" select="substring-before(content:encoded, '>')"/>
    <xsl:variable name="body-lang">
      <xsl:if test="starts-with(content:encoded, '&lt;div dir=&quot;')">
        <xsl:value-of select="normalize-space(substring-before(substring-after($wrapper, ' lang=&quot;'), '&quot;'))"/>
      </xsl:if>
    </xsl:variable>
    <xsl:call-template name="entry">
      <xsl:with-param name="lang">
        <xsl:choose>
          <xsl:when test="normalize-space(@xml:lang) != ''"><xsl:value-of select="normalize-space(@xml:lang)"/></xsl:when>
          <xsl:when test="normalize-space(dc:language[1]) != ''"><xsl:value-of select="normalize-space(dc:language[1])"/></xsl:when>
          <xsl:when test="string($body-lang) != ''"><xsl:value-of select="$body-lang"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="$lang"/></xsl:otherwise>
        </xsl:choose>
      </xsl:with-param>
      <xsl:with-param name="href" select="link"/>
      <xsl:with-param name="title" select="title"/>
      <xsl:with-param name="date" select="pubDate"/>
      <xsl:with-param name="summary" select="description"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template match="atom:entry">
    <xsl:call-template name="entry">
      <xsl:with-param name="lang" select="normalize-space((ancestor-or-self::*/@xml:lang)[last()])"/>
      <xsl:with-param name="href" select="atom:link[not(@rel) or @rel='alternate'][1]/@href"/>
      <xsl:with-param name="title" select="atom:title"/>
      <xsl:with-param name="date" select="atom:published"/>
      <xsl:with-param name="summary" select="atom:summary"/>
    </xsl:call-template>
  </xsl:template>

  <!-- One item: a block in its language's direction (unknown: dir="auto"); the title an isolate in that direction,
       the date (RFC 822 or RFC 3339, Latin digits) an isolate left to right. -->
  <xsl:template name="entry">
    <xsl:param name="lang"/>
    <xsl:param name="href"/>
    <xsl:param name="title"/>
    <xsl:param name="date"/>
    <xsl:param name="summary"/>
    <xsl:variable name="known">
      <xsl:call-template name="direction"><xsl:with-param name="tag" select="$lang"/></xsl:call-template>
    </xsl:variable>
    <xsl:variable name="d">
      <xsl:value-of select="$known"/>
      <xsl:if test="string($known) = ''">auto</xsl:if>
    </xsl:variable>
    <li dir="{$d}">
      <xsl:if test="string($lang) != ''"><xsl:attribute name="lang"><xsl:value-of select="$lang"/></xsl:attribute></xsl:if>
      <a href="{$href}" dir="{$d}"><xsl:value-of select="$title"/></a><br/>
      <time dir="ltr"><xsl:value-of select="$date"/></time>
      <p><xsl:value-of select="$summary"/></p>
    </li>
  </xsl:template>

  <!-- "rtl" or "ltr" for a language tag in any case, with subtags (ar-EG, he-IL, ku-Arab, az-Latn); "" for none.
       As feedsvc/model.py text_direction: a script subtag decides, else the primary language. -->
  <xsl:template name="direction">
    <xsl:param name="tag"/>
    <xsl:variable name="t" select="translate(normalize-space($tag), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_', 'abcdefghijklmnopqrstuvwxyz-')"/>
    <xsl:variable name="primary" select="substring-before(concat($t, '-'), '-')"/>
    <xsl:variable name="script">
      <xsl:call-template name="script"><xsl:with-param name="rest" select="substring-after($t, '-')"/></xsl:call-template>
    </xsl:variable>
    <xsl:choose>
      <xsl:when test="$t = ''"/>
      <xsl:when test="$script != ''">
        <xsl:choose>
          <xsl:when test="contains($rtl-scripts, concat(' ', $script, ' '))">rtl</xsl:when>
          <xsl:otherwise>ltr</xsl:otherwise>
        </xsl:choose>
      </xsl:when>
      <xsl:when test="$primary != '' and contains($rtl-languages, concat(' ', $primary, ' '))">rtl</xsl:when>
      <xsl:otherwise>ltr</xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- The script subtag at the start of rest (subtags joined by "-"), after any extlangs of three letters, or "": a
       region, a variant or an extension ends the search (ar-EG-u-nu-latn is Arabic with Latin digits). RFC 5646 §2.1 -->
  <xsl:template name="script">
    <xsl:param name="rest"/>
    <xsl:variable name="part" select="substring-before(concat($rest, '-'), '-')"/>
    <xsl:variable name="letters" select="translate($part, 'abcdefghijklmnopqrstuvwxyz', '') = ''"/>
    <xsl:choose>
      <xsl:when test="$rest = ''"/>
      <xsl:when test="string-length($part) = 4 and $letters"><xsl:value-of select="$part"/></xsl:when>
      <xsl:when test="string-length($part) = 3 and $letters">
        <xsl:call-template name="script"><xsl:with-param name="rest" select="substring-after($rest, '-')"/></xsl:call-template>
      </xsl:when>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
