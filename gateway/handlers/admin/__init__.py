"""/.gateway/admin/: company admins see their company's members and act on them, as pages
(`pages`) and as a JSON API (`api`); who may (`access`) and what an action does (`actions`)
are shared by both."""
