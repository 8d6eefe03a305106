<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an RSS 2.0 or Atom 1.0 feed as a readable page to a person who opens it in a browser.
     Direction follows the feed's language (RSS <language>, Atom xml:lang); each item also uses dir="auto". -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="lang" select="string((/rss/channel/language | /atom:feed/@xml:lang)[1])"/>
  <xsl:variable name="primary" select="substring-before(concat(translate($lang, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ_', 'abcdefghijklmnopqrstuvwxyz-'), '-'), '-')"/>
  <xsl:variable name="dir">
    <xsl:choose>
      <xsl:when test="$primary = 'ar' or $primary = 'fa' or $primary = 'ur' or $primary = 'he' or $primary = 'ps' or $primary = 'yi'">rtl</xsl:when>
      <xsl:otherwise>ltr</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="title" select="string((/rss/channel/title | /atom:feed/atom:title)[1])"/>
  <xsl:variable name="self" select="string((/rss/channel/*[local-name()='link' and @rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href)[1])"/>
  <xsl:variable name="home" select="string((/rss/channel/link | /atom:feed/atom:link[@rel='alternate']/@href)[1])"/>

  <xsl:template match="/">
    <html lang="{$lang}" dir="{$dir}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body { font-family: system-ui, "Noto Naskh Arabic", Tahoma, sans-serif; line-height: 1.6; max-width: 46rem; margin-inline: auto; padding: 1rem; }
          .subscribe { background: #eef4ff; border: 1px solid #c9dafc; padding: .75rem 1rem; border-radius: .4rem; }
          .subscribe code { user-select: all; word-break: break-all; }
          li { margin-block: .8rem; } time { color: #555; font-size: .9em; }
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
    <li dir="auto">
      <a href="{link}"><xsl:value-of select="title"/></a><br/>
      <time><xsl:value-of select="pubDate"/></time>
      <p><xsl:value-of select="description"/></p>
    </li>
  </xsl:template>

  <xsl:template match="atom:entry">
    <li dir="auto">
      <xsl:if test="@xml:lang"><xsl:attribute name="lang"><xsl:value-of select="@xml:lang"/></xsl:attribute></xsl:if>
      <a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a><br/>
      <time><xsl:value-of select="atom:published"/></time>
      <p><xsl:value-of select="atom:summary"/></p>
    </li>
  </xsl:template>
</xsl:stylesheet>
