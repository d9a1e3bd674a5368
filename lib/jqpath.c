/*
 * jqpath.c: the event paths a jq 1.6 program can read (see jqpath.h).
 *
 * The program text is parsed into a small AST, which is then interpreted
 * abstractly.  Given the kind of its input, an expression yields the set of
 * kinds of its outputs.  A kind is either a path from the event root (the
 * value is the event's subtree there) or opaque (a value computed only from
 * parts already marked whole, so identical on the full and the projected
 * event).  Whatever inspects a path's value beyond indexing it with a
 * literal key marks that path whole.
 */
#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jv.h>

#include "jqpath.h"

/*
 * Limits keep hostile or machine-made programs cheap: past any of them the
 * analysis gives up and marks the root whole, which is always correct.
 */
enum {
	MAXSRC = 1 << 20, /* program bytes */
	MAXNEST = 600,    /* parser recursion */
	MAXDEPTH = 400,   /* analysis recursion */
	MAXPATH = 256,    /* keys in one path */
	MAXKINDS = 64,    /* kinds one expression may yield */
	BUDGET = 200000,  /* analysis steps */
};

enum { FAIL_NONE, FAIL_FALLBACK, FAIL_NOMEM };

struct jqpath_node {
	char *key; /* owned, len bytes plus a NUL */
	size_t len;
	int whole;
	struct jqpath_node **kid; /* sorted bytewise by key */
	size_t nkid, cap;
};

struct jqpath {
	struct jqpath_node root;
};

/* Tokens past the single characters, which stand for themselves. */
enum {
	T_EOF = 256,
	T_BAD,
	T_FIELD,
	T_IDENT,
	T_NUM,
	T_FORMAT,
	T_STR,
	T_REC,
	T_ALT,
	T_SET,
	T_CMP,
	/* keywords, in the order of the table in lex_word() */
	T_AS,
	T_IF,
	T_THEN,
	T_ELIF,
	T_ELSE,
	T_END,
	T_AND,
	T_OR,
	T_REDUCE,
	T_FOREACH,
	T_TRY,
	T_CATCH,
	T_LABEL,
	T_BREAK,
	T_LOC,
};

enum {
	N_DOT,    /* . */
	N_FIELD,  /* a.s: index by a literal key */
	N_INDEX,  /* a[list]: iterate, slice or index by a computed key */
	N_STR,    /* a string literal s */
	N_LIT,    /* any other value not read from the input */
	N_OPAQUE, /* computed from list, each operand needed whole */
	N_ARRAY,  /* [list], like N_OPAQUE */
	N_WHOLE,  /* reads its whole input, and list */
	N_EMPTY,  /* outputs nothing */
	N_PIPE,   /* a | b */
	N_COMMA,  /* a, b */
	N_ALT,    /* a // b */
	N_IF,     /* if a then b else c end; no c means . */
	N_TRY,    /* try a catch b */
	N_AS,     /* a as patterns (keys in list) | b */
	N_REDUCE, /* reduce/foreach a as patterns (keys in list) (b; ...) */
	N_CALL,   /* builtin s(list) */
};

struct ast {
	int type;
	const char *s; /* N_FIELD key, N_STR value, N_CALL name */
	size_t len;
	size_t nargs;
	struct ast *a, *b, *c;
	struct ast *list; /* operands evaluated on the input */
	struct ast *next; /* sibling in a list */
};

struct apath {
	const struct apath *up; /* NULL at the root */
	const char *key;
	size_t len;
	size_t depth;
};

/* A set of kinds; NULL stands for opaque. */
struct kset {
	size_t n;
	const struct apath *k[MAXKINDS];
};

struct chunk {
	struct chunk *next;
	max_align_t mem[];
};

/* The state of one jqpath_add_program() call. */
struct st {
	struct jqpath *jp;
	const char *p;  /* lexer cursor, just past the current token */
	const char *ts; /* current token text */
	size_t tlen;
	int tok;
	int nest, depth;
	long budget;
	int fail;
	struct chunk *chunks; /* every AST node and path of this call */
	struct apath root;
};

/* Trie. */

static void
node_clear(struct jqpath_node *n)
{
	size_t i;

	for (i = 0; i < n->nkid; i++) {
		node_clear(n->kid[i]);
		free(n->kid[i]->key);
		free(n->kid[i]);
	}
	free(n->kid);
	n->kid = NULL;
	n->nkid = n->cap = 0;
}

static void
node_set_whole(struct jqpath_node *n)
{
	node_clear(n);
	n->whole = 1;
}

static int
keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	return c ? c : (alen > blen) - (alen < blen);
}

/* Returns the index of key among n's children, or where it would go. */
static size_t
kid_find(const struct jqpath_node *n, const char *key, size_t len, int *found)
{
	size_t lo = 0, hi = n->nkid;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = keycmp(n->kid[mid]->key, n->kid[mid]->len, key, len);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Returns n's child for key, created if missing, or NULL on ENOMEM. */
static struct jqpath_node *
kid_get(struct jqpath_node *n, const char *key, size_t len)
{
	struct jqpath_node *k, **v;
	size_t i;
	int found;

	/* jv strings measure themselves in ints. */
	if (len > INT_MAX)
		return NULL;
	i = kid_find(n, key, len, &found);
	if (found)
		return n->kid[i];
	if (n->nkid == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 4;

		if (cap > SIZE_MAX / sizeof(*v) ||
		    (v = realloc(n->kid, cap * sizeof(*v))) == NULL)
			return NULL;
		n->kid = v;
		n->cap = cap;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	if ((k->key = malloc(len + 1)) == NULL) {
		free(k);
		return NULL;
	}
	if (len)
		memcpy(k->key, key, len);
	k->key[len] = '\0';
	k->len = len;
	memmove(&n->kid[i + 1], &n->kid[i], (n->nkid - i) * sizeof(*n->kid));
	n->kid[i] = k;
	n->nkid++;
	return k;
}

struct jqpath *
jqpath_new(void)
{
	return calloc(1, sizeof(struct jqpath));
}

void
jqpath_free(struct jqpath *p)
{
	if (p == NULL)
		return;
	node_clear(&p->root);
	free(p);
}

void
jqpath_add_whole(struct jqpath *p)
{
	node_set_whole(&p->root);
}

int
jqpath_add_path(struct jqpath *p, const char *const *keys, size_t n)
{
	struct jqpath_node *cur = &p->root;
	size_t i;

	/* The trie is walked recursively, so its depth is capped. */
	if (n > MAXPATH)
		n = 0;
	for (i = 0; i < n && !cur->whole; i++) {
		if ((cur = kid_get(cur, keys[i], strlen(keys[i]))) == NULL) {
			/* Reading everything is never wrong. */
			jqpath_add_whole(p);
			return -1;
		}
	}
	node_set_whole(cur);
	return 0;
}

int
jqpath_is_whole(const struct jqpath *p)
{
	return p->root.whole;
}

const struct jqpath_node *
jqpath_root(const struct jqpath *p)
{
	return &p->root;
}

int
jqpath_node_whole(const struct jqpath_node *n)
{
	return n->whole;
}

const struct jqpath_node *
jqpath_node_child(const struct jqpath_node *n, const char *key, size_t len)
{
	size_t i;
	int found;

	i = kid_find(n, key, len, &found);
	return found ? n->kid[i] : NULL;
}

size_t
jqpath_node_nchildren(const struct jqpath_node *n)
{
	return n->nkid;
}

struct buf {
	char *s;
	size_t len, cap;
	int err;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (n >= b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 64;
		char *t;

		while (cap - b->len <= n && cap < SIZE_MAX / 2)
			cap *= 2;
		if (cap - b->len <= n || (t = realloc(b->s, cap)) == NULL) {
			b->err = 1;
			return;
		}
		b->s = t;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static int
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static void
dump_key(struct buf *b, const char *key, size_t len)
{
	jv q;
	size_t i;

	for (i = 0; i < len && (is_alpha(key[i]) || (i && is_digit(key[i])));)
		i++;
	if (len && i == len) {
		buf_add(b, key, len);
		return;
	}
	q = jv_dump_string(jv_string_sized(key, (int)len), 0);
	buf_add(b, jv_string_value(q),
	        (size_t)jv_string_length_bytes(jv_copy(q)));
	jv_free(q);
}

static void
dump_node(struct buf *b, const struct jqpath_node *n)
{
	size_t i;

	if (n->whole) {
		buf_add(b, "*", 1);
		return;
	}
	buf_add(b, "{", 1);
	for (i = 0; i < n->nkid; i++) {
		if (i)
			buf_add(b, ",", 1);
		dump_key(b, n->kid[i]->key, n->kid[i]->len);
		buf_add(b, ":", 1);
		dump_node(b, n->kid[i]);
	}
	buf_add(b, "}", 1);
}

char *
jqpath_dump(const struct jqpath *p)
{
	struct buf b = {NULL, 0, 0, 0};

	dump_node(&b, &p->root);
	if (b.err) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

static jv
project(const struct jqpath_node *n, jv v)
{
	jv out;
	size_t i;

	if (n->whole || jv_get_kind(v) != JV_KIND_OBJECT)
		return v;
	out = jv_object();
	for (i = 0; i < n->nkid; i++) {
		const struct jqpath_node *kid = n->kid[i];
		jv k = jv_string_sized(kid->key, (int)kid->len);
		jv x = jv_object_get(jv_copy(v), jv_copy(k));

		if (jv_is_valid(x)) {
			out = jv_object_set(out, k, project(kid, x));
		} else {
			jv_free(k);
			jv_free(x);
		}
	}
	jv_free(v);
	return out;
}

jv
jqpath_project_jv(const struct jqpath *p, jv v)
{
	return project(&p->root, v);
}

/* Analysis state and allocation. */

static void
fail(struct st *st, int why)
{
	if (st->fail != FAIL_NOMEM)
		st->fail = why;
}

/* Returns zeroed memory that lives until the end of the call. */
static void *
st_alloc(struct st *st, size_t n)
{
	struct chunk *c;

	if (n > SIZE_MAX - sizeof(*c) ||
	    (c = calloc(1, sizeof(*c) + n)) == NULL) {
		fail(st, FAIL_NOMEM);
		return NULL;
	}
	c->next = st->chunks;
	st->chunks = c;
	return c->mem;
}

/* Returns a new node, or NULL once anything has failed. */
static struct ast *
mk(struct st *st, int type, struct ast *a, struct ast *b)
{
	struct ast *n;

	if (st->fail || (n = st_alloc(st, sizeof(*n))) == NULL)
		return NULL;
	n->type = type;
	n->a = a;
	n->b = b;
	return n;
}

/* Returns a node of type whose list holds a then b (either may be NULL). */
static struct ast *
mk_list(struct st *st, int type, struct ast *a, struct ast *b)
{
	struct ast *n = mk(st, type, NULL, NULL);

	if (n == NULL)
		return NULL;
	if (a != NULL) {
		n->list = a;
		a->next = b;
	} else {
		n->list = b;
	}
	return n;
}

static void
list_add(struct ast *owner, struct ast *e)
{
	struct ast **tail = &owner->list;

	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = e;
}

static struct ast *
mk_field(struct st *st, struct ast *t, const char *key, size_t len)
{
	struct ast *n = mk(st, N_FIELD, t, NULL);

	if (n != NULL) {
		n->s = key;
		n->len = len;
	}
	return n;
}

/* Returns t indexed by the string s: a field when s is a literal. */
static struct ast *
index_by(struct st *st, struct ast *t, struct ast *s)
{
	struct ast *n;

	if (s != NULL && s->type == N_STR)
		return mk_field(st, t, s->s, s->len);
	if ((n = mk_list(st, N_INDEX, s, NULL)) != NULL)
		n->a = t;
	return n;
}

/* Lexer. */

static int
is_word(char c)
{
	return is_alpha(c) || is_digit(c);
}

/*
 * Classifies the word s[0..n): a keyword, an identifier, or T_BAD for the
 * words that bring in code this analysis does not follow (definitions and
 * modules), even where they are only object keys.
 */
static int
lex_word(const char *s, size_t n)
{
	static const char *const kw[] = {
	        "as",  "if",    "then",  "elif",   "else",
	        "end", "and",   "or",    "reduce", "foreach",
	        "try", "catch", "label", "break",  "__loc__",
	};
	static const char *const bad[] = {"def", "import", "include", "module"};
	size_t i;

	for (i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
		if (strlen(kw[i]) == n && memcmp(kw[i], s, n) == 0)
			return T_AS + (int)i;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (strlen(bad[i]) == n && memcmp(bad[i], s, n) == 0)
			return T_BAD;
	return T_IDENT;
}

/*
 * Reads the next token.  "?//" (destructuring alternatives) and "::"
 * (module functions) are refused like any character jq does not know.
 */
static void
lex(struct st *st)
{
	static const struct {
		const char *s;
		int tok;
	} ops[] = {
	        {"?//", T_BAD}, {"//=", T_SET}, {"..", T_REC}, {"==", T_CMP},
	        {"!=", T_CMP},  {"<=", T_CMP},  {">=", T_CMP}, {"//", T_ALT},
	        {"|=", T_SET},  {"+=", T_SET},  {"-=", T_SET}, {"*=", T_SET},
	        {"/=", T_SET},  {"%=", T_SET},  {"=", T_SET},  {"<", T_CMP},
	        {">", T_CMP},
	};
	const char *p = st->p;
	size_t i, n;

	for (;;) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		else if (*p == '#')
			while (*p != '\0' && *p != '\n')
				p++;
		else
			break;
	}
	st->ts = p;
	st->tok = T_BAD;
	if (*p == '\0') {
		st->tok = T_EOF;
	} else if (is_digit(*p) || (*p == '.' && is_digit(p[1]))) {
		while (is_digit(*p))
			p++;
		if (*p == '.')
			for (p++; is_digit(*p);)
				p++;
		if ((*p == 'e' || *p == 'E') &&
		    (is_digit(p[1]) ||
		     ((p[1] == '+' || p[1] == '-') && is_digit(p[2]))))
			for (p += 2; is_digit(*p);)
				p++;
		st->tok = T_NUM;
	} else if (*p == '.' && is_alpha(p[1])) {
		for (p++; is_word(*p);)
			p++;
		st->tok = T_FIELD;
	} else if (is_alpha(*p)) {
		while (is_word(*p))
			p++;
		if (p[0] != ':' || p[1] != ':')
			st->tok = lex_word(st->ts, (size_t)(p - st->ts));
	} else if (*p == '@') {
		for (p++; is_word(*p);)
			p++;
		if (p - st->ts > 1)
			st->tok = T_FORMAT;
	} else if (*p == '"') {
		p++;
		st->tok = T_STR;
	} else {
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			n = strlen(ops[i].s);
			if (strncmp(p, ops[i].s, n) == 0) {
				p += n;
				st->tok = ops[i].tok;
				break;
			}
		}
		if (i == sizeof(ops) / sizeof(ops[0]) &&
		    strchr(".[]{}()|,:;?+-*/%$", *p) != NULL)
			st->tok = *p++;
	}
	st->tlen = (size_t)(p - st->ts);
	st->p = p;
	if (st->tok == T_BAD)
		fail(st, FAIL_FALLBACK);
}

/* Parser: recursive descent over jq 1.6's grammar and precedence. */

static struct ast *parse_pipe(struct st *st);
static struct ast *parse_unary(struct st *st);
static struct ast *parse_postfix(struct st *st, int allow_as);

/* Counts one level of recursion; the caller undoes it with st->nest--. */
static int
enter(struct st *st)
{
	if (++st->nest > MAXNEST)
		fail(st, FAIL_FALLBACK);
	return st->fail ? -1 : 0;
}

static int
expect(struct st *st, int tok)
{
	if (st->fail || st->tok != tok) {
		fail(st, FAIL_FALLBACK);
		return -1;
	}
	lex(st);
	return 0;
}

static int
is_keyword(int tok)
{
	return tok >= T_AS && tok <= T_LOC;
}

static int
is_name(const struct ast *n, const char *s)
{
	return strlen(s) == n->len && memcmp(n->s, s, n->len) == 0;
}

/* Parses the name after a '$'. */
static int
parse_var(struct st *st)
{
	if (st->tok != T_IDENT && !is_keyword(st->tok)) {
		fail(st, FAIL_FALLBACK);
		return -1;
	}
	lex(st);
	return 0;
}

/*
 * Returns the escape run s[0..n) decoded the way jq's lexer does it: by the
 * JSON parser, so keys match jq's byte for byte.
 */
static jv
unescape(const char *s, size_t n)
{
	jv q = jv_string_fmt("\"%.*s\"", (int)n, s);
	jv v = jv_parse_sized(jv_string_value(q),
	                      jv_string_length_bytes(jv_copy(q)));

	jv_free(q);
	return v;
}

/* Returns the end of the escape run at p, as jq's lexer delimits it. */
static const char *
escape_end(const char *p)
{
	int i;

	while (p[0] == '\\' && p[1] != '(' && p[1] != '\0') {
		p += 2;
		if (p[-1] == 'u')
			for (i = 0; i < 4 &&
			            (is_digit(*p) || (*p >= 'a' && *p <= 'z') ||
			             (*p >= 'A' && *p <= 'Z'));
			     i++)
				p++;
	}
	return p;
}

/*
 * Parses the string literal whose opening quote is the current token.
 * Returns an N_STR holding the decoded bytes when the literal is plain,
 * else an N_OPAQUE listing the interpolated expressions; fmt says a @format
 * precedes it, which never leaves a plain literal.
 */
static struct ast *
parse_string(struct st *st, int fmt)
{
	struct ast *n = mk(st, N_OPAQUE, NULL, NULL), *e;
	const char *p = st->p, *q;
	char *bytes;
	jv lit = jv_string(""), v;

	while (n != NULL && !st->fail && *p != '"') {
		if (*p == '\0') {
			fail(st, FAIL_FALLBACK);
		} else if (p[0] == '\\' && p[1] == '(') {
			st->p = p + 2;
			lex(st);
			if ((e = parse_pipe(st)) == NULL || st->tok != ')') {
				fail(st, FAIL_FALLBACK);
				break;
			}
			list_add(n, e);
			p = st->p;
		} else if (*p == '\\') {
			if ((q = escape_end(p)) == p) {
				fail(st, FAIL_FALLBACK);
				break;
			}
			v = unescape(p, (size_t)(q - p));
			if (jv_get_kind(v) != JV_KIND_STRING) {
				jv_free(v);
				fail(st, FAIL_FALLBACK);
				break;
			}
			lit = jv_string_concat(lit, v);
			p = q;
		} else {
			for (q = p; *q != '\0' && *q != '"' && *q != '\\';)
				q++;
			lit = jv_string_concat(
			        lit, jv_string_sized(p, (int)(q - p)));
			p = q;
		}
	}
	if (n != NULL && !st->fail) {
		st->p = p + 1;
		lex(st);
	}
	if (n != NULL && !st->fail && n->list == NULL && !fmt) {
		n->type = N_STR;
		n->len = (size_t)jv_string_length_bytes(jv_copy(lit));
		if ((bytes = st_alloc(st, n->len + 1)) != NULL)
			memcpy(bytes, jv_string_value(lit), n->len);
		n->s = bytes;
	}
	jv_free(lit);
	return st->fail ? NULL : n;
}

/* Parses a string key, with or without a @format. */
static struct ast *
parse_key_string(struct st *st)
{
	int fmt = st->tok == T_FORMAT;

	if (fmt)
		lex(st);
	if (st->tok != T_STR) {
		fail(st, FAIL_FALLBACK);
		return NULL;
	}
	return parse_string(st, fmt);
}

static int
binlevel(int tok)
{
	switch (tok) {
	case ',':
		return 1;
	case T_ALT:
		return 2;
	case T_SET:
		return 3;
	case T_OR:
		return 4;
	case T_AND:
		return 5;
	case T_CMP:
		return 6;
	case '+':
	case '-':
		return 7;
	case '*':
	case '/':
	case '%':
		return 8;
	default:
		return 0;
	}
}

/*
 * Parses the binary operators of level min and tighter, by precedence
 * climbing.  Every level is built left-deep: for jq's right-associative
 * '//' that gives the same kinds and marks, so it needs no special case.
 */
static struct ast *
parse_bin(struct st *st, int min)
{
	struct ast *l = parse_unary(st);
	int lv;

	while (l != NULL && (lv = binlevel(st->tok)) >= min) {
		int op = st->tok;
		struct ast *r;

		lex(st);
		r = parse_bin(st, lv + 1);
		if (op == ',')
			l = mk(st, N_COMMA, l, r);
		else if (op == T_ALT)
			l = mk(st, N_ALT, l, r);
		else
			l = mk_list(st, op == T_SET ? N_WHOLE : N_OPAQUE, l, r);
	}
	return l;
}

/* Parses an expression; '|' is built left-deep, which analyses alike. */
static struct ast *
parse_pipe(struct st *st)
{
	struct ast *l = parse_bin(st, 1);

	while (l != NULL && st->tok == '|') {
		lex(st);
		l = mk(st, N_PIPE, l, parse_bin(st, 1));
	}
	return l;
}

static struct ast *
parse_unary(struct st *st)
{
	struct ast *n = NULL;

	if (enter(st) == 0) {
		if (st->tok == '-') {
			/* jq binds unary minus below '*' and above '+'. */
			lex(st);
			n = mk_list(st, N_OPAQUE, parse_bin(st, 8), NULL);
		} else {
			n = parse_postfix(st, 1);
		}
	}
	st->nest--;
	return n;
}

/* Parses a destructuring pattern, listing its computed keys in owner. */
static int
parse_pattern(struct st *st, struct ast *owner)
{
	struct ast *k;
	int close, r = -1;

	if (enter(st) != 0) {
		st->nest--;
		return -1;
	}
	if (st->tok == '$') {
		lex(st);
		r = parse_var(st);
	} else if (st->tok == '[' || st->tok == '{') {
		close = st->tok == '[' ? ']' : '}';
		lex(st);
		for (;;) {
			k = NULL;
			if (close == ']') {
				r = parse_pattern(st, owner);
			} else if (st->tok == '$') {
				lex(st);
				r = parse_var(st);
				if (r == 0 && st->tok == ':') {
					lex(st);
					r = parse_pattern(st, owner);
				}
			} else {
				if (st->tok == T_IDENT || is_keyword(st->tok)) {
					lex(st);
				} else if (st->tok == '(') {
					lex(st);
					k = parse_pipe(st);
					expect(st, ')');
				} else {
					k = parse_key_string(st);
				}
				if (k != NULL)
					list_add(owner, k);
				r = expect(st, ':') ? -1
				                    : parse_pattern(st, owner);
			}
			if (r != 0 || st->tok != ',')
				break;
			lex(st);
		}
		if (r == 0)
			r = expect(st, close);
	} else {
		fail(st, FAIL_FALLBACK);
	}
	st->nest--;
	return st->fail ? -1 : r;
}

/* Parses the postfix [...] after t, from its '['. */
static struct ast *
parse_bracket(struct st *st, struct ast *t)
{
	struct ast *n = mk(st, N_INDEX, t, NULL), *e;

	lex(st);
	if (n == NULL)
		return NULL;
	if (st->tok == ']') {
		lex(st);
		return n;
	}
	if (st->tok != ':') {
		e = parse_pipe(st);
		if (st->tok != ':')
			return expect(st, ']') ? NULL : index_by(st, t, e);
		n->list = e;
	}
	lex(st);
	if (st->tok != ']')
		list_add(n, parse_pipe(st));
	return expect(st, ']') ? NULL : n;
}

/* Parses a term of an object value; a unary minus binds to it alone. */
static struct ast *
parse_objterm(struct st *st)
{
	struct ast *t = NULL;

	if (enter(st) == 0) {
		if (st->tok == '-') {
			lex(st);
			t = mk_list(st, N_OPAQUE, parse_objterm(st), NULL);
		} else {
			t = parse_postfix(st, 0);
		}
	}
	st->nest--;
	return t;
}

/* Parses an object value: terms joined by '|'. */
static struct ast *
parse_objval(struct st *st)
{
	struct ast *l = parse_objterm(st);

	while (l != NULL && st->tok == '|') {
		lex(st);
		l = mk(st, N_PIPE, l, parse_objterm(st));
	}
	return l;
}

/*
 * Parses {...}.  Keys and values are evaluated on the input and end up in
 * the object, so all are listed; shorthands become their field access.
 */
static struct ast *
parse_object(struct st *st)
{
	struct ast *n = mk(st, N_OPAQUE, NULL, NULL);
	const char *name;
	size_t len;

	lex(st);
	while (n != NULL && !st->fail && st->tok != '}') {
		struct ast *k = NULL, *v = NULL;

		if (st->tok == '$') {
			lex(st);
			parse_var(st);
		} else if (st->tok == T_IDENT || is_keyword(st->tok)) {
			name = st->ts;
			len = st->tlen;
			lex(st);
			if (st->tok != ':')
				v = mk_field(st, mk(st, N_DOT, NULL, NULL),
				             name, len);
		} else if (st->tok == '(') {
			lex(st);
			k = parse_pipe(st);
			if (expect(st, ')') == 0 && st->tok != ':')
				fail(st, FAIL_FALLBACK);
		} else {
			k = parse_key_string(st);
			if (k != NULL && st->tok != ':') {
				v = index_by(st, mk(st, N_DOT, NULL, NULL), k);
				k = NULL;
			}
		}
		if (!st->fail && st->tok == ':') {
			lex(st);
			v = parse_objval(st);
		}
		if (st->fail)
			break;
		if (k != NULL)
			list_add(n, k);
		if (v != NULL)
			list_add(n, v);
		if (st->tok == ',')
			lex(st);
		else if (st->tok != '}')
			fail(st, FAIL_FALLBACK);
	}
	return expect(st, '}') ? NULL : n;
}

/* Parses a builtin call; true, false and null are literals. */
static struct ast *
parse_call(struct st *st)
{
	struct ast *n = mk(st, N_CALL, NULL, NULL);

	if (n == NULL)
		return NULL;
	n->s = st->ts;
	n->len = st->tlen;
	lex(st);
	if (st->tok == '(') {
		do {
			struct ast *e;

			lex(st);
			if ((e = parse_pipe(st)) == NULL)
				return NULL;
			list_add(n, e);
			n->nargs++;
		} while (st->tok == ';');
		if (expect(st, ')') != 0)
			return NULL;
	} else if (is_name(n, "true") || is_name(n, "false") ||
	           is_name(n, "null")) {
		n->type = N_LIT;
	}
	return st->fail ? NULL : n;
}

/* Parses from "if" or "elif" through the matching "end". */
static struct ast *
parse_if(struct st *st)
{
	struct ast *n = NULL;

	if (enter(st) == 0) {
		struct ast *c;

		lex(st);
		c = parse_pipe(st);
		if (expect(st, T_THEN) == 0)
			n = mk(st, N_IF, c, parse_pipe(st));
		if (n != NULL && st->tok == T_ELIF) {
			n->c = parse_if(st);
		} else if (n != NULL && st->tok == T_ELSE) {
			lex(st);
			n->c = parse_pipe(st);
			expect(st, T_END);
		} else {
			expect(st, T_END);
		}
	}
	st->nest--;
	return st->fail ? NULL : n;
}

/*
 * Parses reduce and foreach.  Their update and extract see only the
 * accumulator, which starts from values marked whole, so only their syntax
 * matters.
 */
static struct ast *
parse_reduce(struct st *st)
{
	int each = st->tok == T_FOREACH;
	struct ast *n;

	lex(st);
	n = mk(st, N_REDUCE, parse_postfix(st, 0), NULL);
	if (n == NULL || expect(st, T_AS) != 0 || parse_pattern(st, n) != 0 ||
	    expect(st, '(') != 0)
		return NULL;
	n->b = parse_pipe(st);
	if (expect(st, ';') != 0 || parse_pipe(st) == NULL)
		return NULL;
	if (each && st->tok == ';') {
		lex(st);
		if (parse_pipe(st) == NULL)
			return NULL;
	}
	return expect(st, ')') ? NULL : n;
}

static struct ast *
parse_primary(struct st *st)
{
	struct ast *n = NULL;

	if (enter(st) != 0) {
		st->nest--;
		return NULL;
	}
	switch (st->tok) {
	case '.':
		lex(st);
		n = mk(st, N_DOT, NULL, NULL);
		if (st->tok == T_STR)
			n = index_by(st, n, parse_string(st, 0));
		break;
	case T_FIELD:
		n = mk_field(st, mk(st, N_DOT, NULL, NULL), st->ts + 1,
		             st->tlen - 1);
		lex(st);
		break;
	case T_REC:
		lex(st);
		n = mk(st, N_WHOLE, NULL, NULL);
		break;
	case T_NUM:
		lex(st);
		n = mk(st, N_LIT, NULL, NULL);
		break;
	case T_STR:
		n = parse_string(st, 0);
		break;
	case T_FORMAT:
		lex(st);
		/* A format without a string applies to the whole input. */
		if (st->tok == T_STR)
			n = parse_string(st, 1);
		else
			n = mk(st, N_WHOLE, NULL, NULL);
		break;
	case '(':
		lex(st);
		n = parse_pipe(st);
		if (expect(st, ')') != 0)
			n = NULL;
		break;
	case '[':
		lex(st);
		n = mk(st, N_ARRAY, NULL, NULL);
		if (n != NULL && st->tok != ']')
			n->list = parse_pipe(st);
		if (expect(st, ']') != 0)
			n = NULL;
		break;
	case '{':
		n = parse_object(st);
		break;
	case '$':
		lex(st);
		if (parse_var(st) == 0)
			n = mk(st, N_LIT, NULL, NULL);
		break;
	case T_IDENT:
		n = parse_call(st);
		break;
	case T_IF:
		n = parse_if(st);
		break;
	case T_TRY:
		lex(st);
		n = mk(st, N_TRY, parse_unary(st), NULL);
		if (n != NULL && st->tok == T_CATCH) {
			lex(st);
			n->b = parse_unary(st);
		}
		break;
	case T_REDUCE:
	case T_FOREACH:
		n = parse_reduce(st);
		break;
	case T_LABEL:
		lex(st);
		if (expect(st, '$') == 0 && parse_var(st) == 0 &&
		    expect(st, '|') == 0)
			n = parse_pipe(st);
		break;
	case T_BREAK:
		lex(st);
		if (expect(st, '$') == 0 && parse_var(st) == 0)
			n = mk(st, N_EMPTY, NULL, NULL);
		break;
	default:
		fail(st, FAIL_FALLBACK);
		break;
	}
	st->nest--;
	return st->fail ? NULL : n;
}

/* Parses a term, its postfix operators, and an "as" binding after it. */
static struct ast *
parse_postfix(struct st *st, int allow_as)
{
	struct ast *t = parse_primary(st), *n;

	while (t != NULL) {
		if (st->tok == T_FIELD) {
			t = mk_field(st, t, st->ts + 1, st->tlen - 1);
			lex(st);
		} else if (st->tok == '.') {
			lex(st);
			if (st->tok != T_STR) {
				fail(st, FAIL_FALLBACK);
				return NULL;
			}
			t = index_by(st, t, parse_string(st, 0));
		} else if (st->tok == '[') {
			t = parse_bracket(st, t);
		} else if (st->tok == '?') {
			/* try without catch yields the kinds of its body */
			lex(st);
		} else {
			break;
		}
	}
	if (t == NULL || !allow_as || st->tok != T_AS)
		return st->fail ? NULL : t;
	n = mk(st, N_AS, t, NULL);
	lex(st);
	if (n == NULL || parse_pattern(st, n) != 0 || expect(st, '|') != 0)
		return NULL;
	n->b = parse_pipe(st);
	return st->fail ? NULL : n;
}

/* Analysis. */

static int
path_eq(const struct apath *a, const struct apath *b)
{
	for (; a != b; a = a->up, b = b->up)
		if (a == NULL || b == NULL || a->depth != b->depth ||
		    keycmp(a->key, a->len, b->key, b->len) != 0)
			return 0;
	return 1;
}

static void
kset_add(struct st *st, struct kset *s, const struct apath *k)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (path_eq(s->k[i], k))
			return;
	if (s->n == MAXKINDS)
		fail(st, FAIL_FALLBACK);
	else
		s->k[s->n++] = k;
}

static void
kset_union(struct st *st, struct kset *dst, const struct kset *src)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		kset_add(st, dst, src->k[i]);
}

/* Returns the trie node for path a, created if missing, or the whole
 * ancestor that already covers it; NULL on ENOMEM. */
static struct jqpath_node *
trie_walk(struct st *st, const struct apath *a)
{
	struct jqpath_node *n;

	if (a->up == NULL)
		return &st->jp->root;
	if ((n = trie_walk(st, a->up)) == NULL || n->whole)
		return n;
	if ((n = kid_get(n, a->key, a->len)) == NULL)
		fail(st, FAIL_NOMEM);
	return n;
}

/*
 * Records that path k is read: whole, or only touched, which keeps the
 * value's type so that indexing it fails or succeeds as on the full event.
 */
static void
mark(struct st *st, const struct apath *k, int whole)
{
	struct jqpath_node *n;

	if (k != NULL && !st->fail && (n = trie_walk(st, k)) != NULL && whole)
		node_set_whole(n);
}

/* Returns the kind of k indexed by key. */
static const struct apath *
path_child(struct st *st, const struct apath *k, const char *key, size_t len)
{
	struct apath *c;

	if (k == NULL)
		return NULL;
	mark(st, k, 0);
	if (k->depth >= MAXPATH) {
		fail(st, FAIL_FALLBACK);
		return NULL;
	}
	if ((c = st_alloc(st, sizeof(*c))) == NULL)
		return NULL;
	c->up = k;
	c->key = key;
	c->len = len;
	c->depth = k->depth + 1;
	return c;
}

static void analyse(struct st *st, const struct ast *n, const struct apath *ctx,
                    struct kset *out);

/* Analyses n on ctx and marks every path it yields whole. */
static void
analyse_mark(struct st *st, const struct ast *n, const struct apath *ctx)
{
	struct kset s;
	size_t i;

	if (ctx == NULL)
		return;
	/*
	 * Marking distributes over ',' and over the right side of '|', which
	 * keeps long lists from overflowing a kind set.
	 */
	for (; n->type == N_COMMA && !st->fail; n = n->a)
		analyse_mark(st, n->b, ctx);
	if (n->type == N_PIPE) {
		analyse(st, n->a, ctx, &s);
		for (i = 0; i < s.n; i++)
			analyse_mark(st, n->b, s.k[i]);
		return;
	}
	analyse(st, n, ctx, &s);
	for (i = 0; i < s.n; i++)
		mark(st, s.k[i], 1);
}

static void
mark_list(struct st *st, const struct ast *list, const struct apath *ctx)
{
	for (; list != NULL; list = list->next)
		analyse_mark(st, list, ctx);
}

/* Extends *k by the literal keys of the ',' list e; -1 if e is not one. */
static int
literal_keys(struct st *st, const struct ast *e, const struct apath **k)
{
	int r = 0;

	if (++st->depth > MAXDEPTH)
		fail(st, FAIL_FALLBACK);
	if (st->fail)
		r = -1;
	else if (e->type == N_COMMA)
		r = literal_keys(st, e->a, k) ? -1 : literal_keys(st, e->b, k);
	else if (e->type == N_STR)
		*k = path_child(st, *k, e->s, e->len);
	else
		r = -1;
	st->depth--;
	return r;
}

enum {
	B_OTHER,   /* reads its whole input */
	B_CONST,   /* never reads its input */
	B_EMPTY,   /* outputs nothing */
	B_SELECT,  /* select(c): its input, when c holds */
	B_ERROR,   /* error(m): raises m */
	B_HAS,     /* has(k) */
	B_GETPATH, /* getpath(p) */
	B_ANYALL,  /* any(g; c), all(g; c) */
	B_ISEMPTY, /* isempty(g) */
	B_FIRST,   /* first(g): an output of g */
	B_LAST,    /* last(g): an output of g, or null */
	B_LIMIT,   /* limit(n; g): outputs of g */
};

/* The builtins whose reads are narrower than their whole input. */
static const struct builtin {
	const char *name;
	size_t nargs;
	int how;
} builtins[] = {
        {"all", 2, B_ANYALL},
        {"any", 2, B_ANYALL},
        {"builtins", 0, B_CONST},
        {"empty", 0, B_EMPTY},
        {"env", 0, B_CONST},
        {"error", 1, B_ERROR},
        {"first", 1, B_FIRST},
        {"getpath", 1, B_GETPATH},
        {"has", 1, B_HAS},
        {"infinite", 0, B_CONST},
        {"input", 0, B_CONST},
        {"input_filename", 0, B_CONST},
        {"input_line_number", 0, B_CONST},
        {"inputs", 0, B_CONST},
        {"isempty", 1, B_ISEMPTY},
        {"last", 1, B_LAST},
        {"limit", 2, B_LIMIT},
        {"nan", 0, B_CONST},
        {"now", 0, B_CONST},
        {"select", 1, B_SELECT},
};

static void
analyse_call(struct st *st, const struct ast *n, const struct apath *ctx,
             struct kset *out)
{
	const struct ast *a0 = n->list, *a1 = a0 ? a0->next : NULL;
	const struct apath *k = ctx;
	struct kset s;
	size_t i;
	int how = B_OTHER;

	for (i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++)
		if (builtins[i].nargs == n->nargs &&
		    is_name(n, builtins[i].name))
			how = builtins[i].how;
	if (how == B_HAS && a0->type != N_STR)
		how = B_OTHER;
	if (how == B_GETPATH &&
	    (a0->type != N_ARRAY ||
	     (a0->list != NULL && literal_keys(st, a0->list, &k) != 0)))
		how = B_OTHER;
	s.n = 0;
	switch (how) {
	case B_CONST:
		kset_add(st, out, NULL);
		break;
	case B_EMPTY:
		break;
	case B_SELECT:
		analyse_mark(st, a0, ctx);
		kset_add(st, out, ctx);
		break;
	case B_ERROR:
	case B_ISEMPTY:
		analyse_mark(st, a0, ctx);
		if (how == B_ISEMPTY)
			kset_add(st, out, NULL);
		break;
	case B_HAS:
		mark(st, path_child(st, ctx, a0->s, a0->len), 1);
		kset_add(st, out, NULL);
		break;
	case B_GETPATH:
		kset_add(st, out, k);
		break;
	case B_ANYALL:
		analyse(st, a0, ctx, &s);
		for (i = 0; i < s.n; i++)
			analyse_mark(st, a1, s.k[i]);
		kset_add(st, out, NULL);
		break;
	case B_LIMIT:
		analyse_mark(st, a0, ctx);
		analyse(st, a1, ctx, &s);
		kset_union(st, out, &s);
		break;
	case B_FIRST:
	case B_LAST:
		analyse(st, a0, ctx, &s);
		kset_union(st, out, &s);
		if (how == B_LAST)
			kset_add(st, out, NULL);
		break;
	default:
		mark(st, ctx, 1);
		mark_list(st, n->list, ctx);
		kset_add(st, out, NULL);
		break;
	}
}

/* Sets out to the kinds n yields on an input of kind ctx. */
static void
analyse(struct st *st, const struct ast *n, const struct apath *ctx,
        struct kset *out)
{
	const struct ast *m;
	struct kset s, t;
	size_t i;

	out->n = 0;
	if (st->fail)
		return;
	/*
	 * Nothing evaluated on an opaque input can reach the event: variables
	 * hold values marked whole, and definitions are refused.  Once the
	 * root is whole there is nothing left to learn.
	 */
	if (ctx == NULL || st->jp->root.whole) {
		kset_add(st, out, NULL);
		return;
	}
	if (--st->budget < 0 || ++st->depth > MAXDEPTH) {
		fail(st, FAIL_FALLBACK);
		return;
	}
	switch (n->type) {
	case N_DOT:
		kset_add(st, out, ctx);
		break;
	case N_FIELD:
		analyse(st, n->a, ctx, &s);
		for (i = 0; i < s.n; i++)
			kset_add(st, out, path_child(st, s.k[i], n->s, n->len));
		break;
	case N_INDEX:
		/* The index is evaluated on the same input as the term. */
		analyse_mark(st, n->a, ctx);
		mark_list(st, n->list, ctx);
		kset_add(st, out, NULL);
		break;
	case N_WHOLE:
		mark(st, ctx, 1);
		/* FALLTHROUGH */
	case N_OPAQUE:
	case N_ARRAY:
		mark_list(st, n->list, ctx);
		/* FALLTHROUGH */
	case N_STR:
	case N_LIT:
		kset_add(st, out, NULL);
		break;
	case N_EMPTY:
		break;
	case N_PIPE:
		analyse(st, n->a, ctx, &s);
		for (i = 0; i < s.n; i++) {
			analyse(st, n->b, s.k[i], &t);
			kset_union(st, out, &t);
		}
		break;
	case N_COMMA:
		for (m = n; m->type == N_COMMA; m = m->a) {
			analyse(st, m->b, ctx, &t);
			kset_union(st, out, &t);
		}
		analyse(st, m, ctx, &t);
		kset_union(st, out, &t);
		break;
	case N_ALT:
		/* The left side's truthiness picks the outputs. */
		analyse(st, n->a, ctx, &s);
		for (i = 0; i < s.n; i++)
			mark(st, s.k[i], 1);
		kset_union(st, out, &s);
		analyse(st, n->b, ctx, &t);
		kset_union(st, out, &t);
		break;
	case N_IF:
		analyse_mark(st, n->a, ctx);
		analyse(st, n->b, ctx, &t);
		kset_union(st, out, &t);
		if (n->c == NULL) {
			kset_add(st, out, ctx);
		} else {
			analyse(st, n->c, ctx, &t);
			kset_union(st, out, &t);
		}
		break;
	case N_TRY:
		/* The catch body sees only the error, an opaque value. */
		analyse(st, n->a, ctx, &t);
		kset_union(st, out, &t);
		if (n->b != NULL)
			kset_add(st, out, NULL);
		break;
	case N_AS:
		/* A variable may be used any way at all. */
		analyse_mark(st, n->a, ctx);
		mark_list(st, n->list, ctx);
		analyse(st, n->b, ctx, &t);
		kset_union(st, out, &t);
		break;
	case N_REDUCE:
		analyse_mark(st, n->a, ctx);
		mark_list(st, n->list, ctx);
		analyse_mark(st, n->b, ctx);
		kset_add(st, out, NULL);
		break;
	case N_CALL:
		analyse_call(st, n, ctx, out);
		break;
	default:
		kset_add(st, out, NULL);
		break;
	}
	st->depth--;
}

int
jqpath_add_program(struct jqpath *p, const char *src)
{
	struct st st;
	struct ast *prog = NULL;
	struct chunk *c;

	memset(&st, 0, sizeof(st));
	st.jp = p;
	st.budget = BUDGET;
	if (src == NULL || strlen(src) > MAXSRC) {
		fail(&st, FAIL_FALLBACK);
	} else {
		st.p = src;
		lex(&st);
		/* jq runs an empty program as "." */
		if (st.tok == T_EOF)
			prog = mk(&st, N_DOT, NULL, NULL);
		else
			prog = parse_pipe(&st);
		if (!st.fail && st.tok != T_EOF)
			fail(&st, FAIL_FALLBACK);
	}
	/* The program's outputs are used as values, so they are read whole. */
	if (!st.fail)
		analyse_mark(&st, prog, &st.root);
	while ((c = st.chunks) != NULL) {
		st.chunks = c->next;
		free(c);
	}
	if (st.fail)
		jqpath_add_whole(p);
	if (st.fail == FAIL_NOMEM)
		return -1;
	return st.fail == FAIL_FALLBACK;
}
