"""The gallery's pages, a module for each: the grid and the feed (`grid`), an image's panel
and what it posts (`image`), compare (`compare`), the selection bar (`selection`), boards
(`boards`) and the trash (`trash`). The workflows they start live in `gallery.services`."""
