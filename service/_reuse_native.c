/* The in-memory reuse store's event loop (``reuse_memory.py``), compiled.
 *
 * Batch rescoring spends most of its time outside decoding in this loop, and in Python it
 * stayed a long tail of list, dict and float operations with no line worth more than a
 * couple of percent of a run (docs/BENCHMARKS.md, sessions 8 to 12). Here an entity is one
 * C struct, a relation of one member two fields of it, a general relation two sorted C
 * arrays (times, members) plus a dict from member to time, and counts are written straight
 * into the bytes a chunk's feature matrix reads.
 *
 * What it computes is ``reuse_memory.py``'s definition, step for step: which member a set
 * at its cap trims first, the lazy trim by time, ZADD GT and NX, late events, eviction of
 * entities idle past the widest window. ``tests/unit/test_reuse_memory.py`` holds it to a
 * plain model of that definition and ``tests/integration/test_reuse_equivalence.py`` to the
 * Redis scripts.
 *
 * Memory comes from PyMem_*, so tracemalloc (the bench's memory row) sees all of it.
 * The store holds strong references to member and id strings and to IPQS blobs, never to
 * itself, so it takes no part in the cyclic garbage collector.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_WINDOWS 16
#define MAX_SLOTS 8
#define MAX_STEPS 8
#define MAX_SPACES 4
#define ENTITIES 3
/* The reuse script trims a set by time only past this many members. */
#define LAZY 8

typedef struct {
    double *times;     /* ascending: Redis's rank order is by time, then member */
    PyObject **names;  /* strong references, parallel to times */
    Py_ssize_t size, capacity;
    PyObject *members; /* member -> its time (float) */
} General;

typedef struct {
    PyObject *single; /* the only member (a strong reference), or NULL */
    double time;      /* the only member's */
    General *general; /* two members or more, or NULL */
} Relation;

typedef struct Entry {
    struct Entry *older, *newer; /* last-write order */
    PyObject *id;                /* its key in its entity's table */
    int entity;
    double last_write;
    long long first; /* the first sighting, in milliseconds */
    PyObject *blob;  /* the remembered IPQS result, or NULL */
    double blob_at;
    Relation relations[];
} Entry;

typedef struct {
    int kind, slot;
} Step;

typedef struct {
    int gt, nx; /* steps[:gt] are ZADD GT relations, the next nx ZADD NX ones */
    Step steps[MAX_STEPS];
} EntityPlan;

typedef struct {
    PyObject_HEAD
    int windows;
    double window[MAX_WINDOWS];
    Py_ssize_t cap;
    double ipqs_window;
    int kinds;
    int device, user; /* which entities are these */
    int slots[ENTITIES];
    int spaces;
    EntityPlan plans[MAX_SPACES][ENTITIES];
    PyObject *space_index; /* space name -> index into plans */
    PyObject *tables[ENTITIES]; /* entity id -> its Entry (as an int) */
    Entry *oldest, *newest;
    Py_ssize_t entries;
} Store;

/* ---- sorted arrays ---- */

static Py_ssize_t
first_at_or_after(const double *times, Py_ssize_t low, Py_ssize_t high, double at)
{
    while (low < high) {
        Py_ssize_t mid = low + (high - low) / 2;
        if (times[mid] < at)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

static Py_ssize_t
first_after(const double *times, Py_ssize_t low, Py_ssize_t high, double at)
{
    while (low < high) {
        Py_ssize_t mid = low + (high - low) / 2;
        if (at < times[mid])
            high = mid;
        else
            low = mid + 1;
    }
    return low;
}

/* Where ``member`` at ``at`` ranks: among the members of that time, by member. */
static Py_ssize_t
rank_of(General *g, double at, PyObject *member)
{
    Py_ssize_t low = first_at_or_after(g->times, 0, g->size, at);
    Py_ssize_t high = first_after(g->times, low, g->size, at);
    while (low < high) {
        Py_ssize_t mid = low + (high - low) / 2;
        if (PyUnicode_Compare(g->names[mid], member) < 0)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

static int
general_reserve(General *g, Py_ssize_t size)
{
    if (size <= g->capacity)
        return 0;
    Py_ssize_t capacity = g->capacity * 2;
    if (capacity < size)
        capacity = size;
    double *times = PyMem_Realloc(g->times, capacity * sizeof(double));
    if (times == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    g->times = times;
    PyObject **names = PyMem_Realloc(g->names, capacity * sizeof(PyObject *));
    if (names == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    g->names = names;
    g->capacity = capacity;
    return 0;
}

/* ``member`` (a new reference taken) at ``at``, at its rank. */
static int
general_insert(General *g, double at, PyObject *member)
{
    if (general_reserve(g, g->size + 1) < 0)
        return -1;
    Py_ssize_t position;
    if (g->size == 0 || g->times[g->size - 1] < at ||
        (g->times[g->size - 1] == at && PyUnicode_Compare(g->names[g->size - 1], member) < 0))
        position = g->size; /* the usual join: the newest member */
    else
        position = rank_of(g, at, member);
    Py_ssize_t after = g->size - position;
    memmove(g->times + position + 1, g->times + position, after * sizeof(double));
    memmove(g->names + position + 1, g->names + position, after * sizeof(PyObject *));
    g->times[position] = at;
    Py_INCREF(member);
    g->names[position] = member;
    g->size++;
    return 0;
}

static void
general_remove(General *g, double at, PyObject *member)
{
    Py_ssize_t position = rank_of(g, at, member);
    Py_DECREF(g->names[position]);
    Py_ssize_t after = g->size - position - 1;
    memmove(g->times + position, g->times + position + 1, after * sizeof(double));
    memmove(g->names + position, g->names + position + 1, after * sizeof(PyObject *));
    g->size--;
}

static int
general_drop_first(General *g, Py_ssize_t count)
{
    if (count <= 0)
        return 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (PyDict_DelItem(g->members, g->names[i]) < 0)
            return -1;
        Py_DECREF(g->names[i]);
    }
    g->size -= count;
    memmove(g->times, g->times + count, g->size * sizeof(double));
    memmove(g->names, g->names + count, g->size * sizeof(PyObject *));
    return 0;
}

/* What the reuse script does when a member joins: members older than ``horizon`` go once
 * the set holds more than LAZY, then the lowest ranks past ``cap``. */
static int
general_trim(General *g, double horizon, Py_ssize_t cap)
{
    if (g->size > LAZY &&
        general_drop_first(g, first_at_or_after(g->times, 0, g->size, horizon)) < 0)
        return -1;
    return general_drop_first(g, g->size - cap);
}

static int
set_time(PyObject *members, PyObject *member, double at)
{
    PyObject *time = PyFloat_FromDouble(at);
    if (time == NULL)
        return -1;
    int failed = PyDict_SetItem(members, member, time);
    Py_DECREF(time);
    return failed;
}

/* A relation's only member (its reference taken over) joined by a second. */
static General *
general_from_single(PyObject *single, double at)
{
    General *g = PyMem_Calloc(1, sizeof(General));
    if (g == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    g->members = PyDict_New();
    if (g->members == NULL || general_reserve(g, 4) < 0 || set_time(g->members, single, at) < 0) {
        Py_XDECREF(g->members);
        PyMem_Free(g->times);
        PyMem_Free(g->names);
        PyMem_Free(g);
        return NULL;
    }
    g->times[0] = at;
    g->names[0] = single;
    g->size = 1;
    return g;
}

static void
general_free(General *g)
{
    for (Py_ssize_t i = 0; i < g->size; i++)
        Py_DECREF(g->names[i]);
    Py_DECREF(g->members);
    PyMem_Free(g->times);
    PyMem_Free(g->names);
    PyMem_Free(g);
}

/* ---- counts ---- */

/* Members at or after each window's start (the narrowest first). */
static void
count_general(const Store *s, const General *g, double now, int64_t *out)
{
    double oldest = g->times[0];
    for (int w = 0; w < s->windows; w++) {
        double start = now - s->window[w];
        out[w] = oldest >= start ? g->size
                                 : g->size - first_at_or_after(g->times, 0, g->size, start);
    }
}

static void
count_single(const Store *s, double time, double now, int64_t *out)
{
    for (int w = 0; w < s->windows; w++)
        out[w] = time >= now - s->window[w];
}

static void
count_same(const Store *s, int64_t n, int64_t *out)
{
    for (int w = 0; w < s->windows; w++)
        out[w] = n;
}

/* ---- entities ---- */

static void
unlink_entry(Store *s, Entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        s->newest = e->older;
    e->older = e->newer = NULL;
}

static void
append_entry(Store *s, Entry *e)
{
    e->older = s->newest;
    e->newer = NULL;
    if (s->newest)
        s->newest->newer = e;
    else
        s->oldest = e;
    s->newest = e;
}

static void
free_entry(Store *s, Entry *e)
{
    for (int i = 0; i < s->slots[e->entity]; i++) {
        Relation *r = &e->relations[i];
        Py_XDECREF(r->single);
        if (r->general)
            general_free(r->general);
    }
    Py_XDECREF(e->blob);
    Py_DECREF(e->id);
    PyMem_Free(e);
}

static Entry *
new_entry(Store *s, int entity, PyObject *id, double now, long long now_ms)
{
    Entry *e = PyMem_Calloc(1, sizeof(Entry) + s->slots[entity] * sizeof(Relation));
    if (e == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    PyObject *address = PyLong_FromVoidPtr(e);
    if (address == NULL || PyDict_SetItem(s->tables[entity], id, address) < 0) {
        Py_XDECREF(address);
        PyMem_Free(e);
        return NULL;
    }
    Py_DECREF(address);
    Py_INCREF(id);
    e->id = id;
    e->entity = entity;
    e->last_write = now;
    e->first = now_ms;
    append_entry(s, e);
    s->entries++;
    return e;
}

/* Entities last written before ``horizon``, from the least recently written, up to the
 * first one written since (as Redis lets their keys expire). */
static int
evict(Store *s, double horizon)
{
    while (s->oldest && s->oldest->last_write < horizon) {
        Entry *e = s->oldest;
        if (PyDict_DelItem(s->tables[e->entity], e->id) < 0)
            return -1;
        unlink_entry(s, e);
        free_entry(s, e);
        s->entries--;
    }
    return 0;
}

static inline int
counts_as_member(PyObject *member)
{
    return member != Py_None && PyUnicode_GET_LENGTH(member) > 0;
}

static inline int
same_member(PyObject *a, PyObject *b)
{
    return a == b || PyUnicode_Compare(a, b) == 0;
}

/* A relation written or read by one event: its counts go to ``out``; ``touched`` is set
 * when a member is written. ``nx``: a member keeps the time it joined at. */
static int
step(const Store *s, Relation *r, PyObject *member, int nx, double now, double horizon,
     int64_t *out, int *touched)
{
    int writes = counts_as_member(member);
    if (r->general == NULL) {
        if (r->single == NULL) {
            if (writes) {
                *touched = 1;
                Py_INCREF(member);
                r->single = member;
                r->time = now;
                count_same(s, 1, out);
            }
            else
                count_same(s, 0, out);
            return 0;
        }
        if (!writes) {
            count_single(s, r->time, now, out);
            return 0;
        }
        if (same_member(r->single, member)) {
            *touched = 1;
            if (!nx && now > r->time)
                r->time = now;
            count_single(s, r->time, now, out);
            return 0;
        }
        /* A second member joins: the relation takes its general form. */
        General *g = general_from_single(r->single, r->time);
        if (g == NULL)
            return -1;
        r->single = NULL;
        r->general = g;
    }
    General *g = r->general;
    if (writes) {
        *touched = 1;
        Py_ssize_t last = g->size - 1;
        if (!nx && same_member(g->names[last], member)) {
            /* The newest member again: newer still, and never a join, so no trim. */
            if (now > g->times[last]) {
                g->times[last] = now;
                if (set_time(g->members, member, now) < 0)
                    return -1;
            }
        }
        else {
            PyObject *previous = PyDict_GetItemWithError(g->members, member);
            if (previous == NULL) {
                if (PyErr_Occurred())
                    return -1;
                /* A new member joins, then the trims by time and by rank. */
                if (set_time(g->members, member, now) < 0 || general_insert(g, now, member) < 0)
                    return -1;
                if ((g->size > LAZY && g->times[0] < horizon) || g->size > s->cap) {
                    if (general_trim(g, horizon, s->cap) < 0)
                        return -1;
                }
            }
            else if (!nx && now > PyFloat_AS_DOUBLE(previous)) {
                /* Redis trims only when a member joins. */
                general_remove(g, PyFloat_AS_DOUBLE(previous), member);
                if (set_time(g->members, member, now) < 0 || general_insert(g, now, member) < 0)
                    return -1;
            }
        }
    }
    count_general(s, g, now, out);
    return 0;
}

static int
check_members(PyObject *members, int kinds)
{
    if (!PyTuple_Check(members) || PyTuple_GET_SIZE(members) != kinds) {
        PyErr_Format(PyExc_TypeError, "members: a tuple of %d str or None", kinds);
        return -1;
    }
    for (int k = 0; k < kinds; k++) {
        PyObject *m = PyTuple_GET_ITEM(members, k);
        if (m != Py_None && !PyUnicode_Check(m)) {
            PyErr_Format(PyExc_TypeError, "members: a tuple of %d str or None", kinds);
            return -1;
        }
    }
    return 0;
}

/* One event: its counts to ``out``, its device's first sighting and the IPQS result joined
 * on its user to ``first`` and ``joined`` (new references, or NULL for none). */
static int
record(Store *s, PyObject *input, PyObject *moment, PyObject *blob, int64_t *out,
       PyObject **first, PyObject **joined)
{
    PyObject *space, *ids, *members;
    if (!PyTuple_Check(input) || PyTuple_GET_SIZE(input) != 3) {
        PyErr_SetString(PyExc_TypeError, "an input is (space, entity ids, members)");
        return -1;
    }
    space = PyTuple_GET_ITEM(input, 0);
    ids = PyTuple_GET_ITEM(input, 1);
    members = PyTuple_GET_ITEM(input, 2);
    if (!PyTuple_Check(ids) || PyTuple_GET_SIZE(ids) != ENTITIES) {
        PyErr_SetString(PyExc_TypeError, "entity ids: a tuple of 3");
        return -1;
    }
    if (check_members(members, s->kinds) < 0)
        return -1;
    PyObject *index = PyDict_GetItemWithError(s->space_index, space);
    if (index == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "unknown device space %R", space);
        return -1;
    }
    const EntityPlan *plans = s->plans[PyLong_AsLong(index)];
    long long now_ms = PyLong_AsLongLong(moment);
    if (now_ms == -1 && PyErr_Occurred())
        return -1;
    int keeps_blob = PyObject_IsTrue(blob);
    if (keeps_blob < 0)
        return -1;

    double now = (double)now_ms; /* exact below 2**53, as the Python store's floats */
    double horizon = now - s->window[s->windows - 1];
    if (s->oldest && s->oldest->last_write < horizon && evict(s, horizon) < 0)
        return -1;
    *first = *joined = NULL;
    for (int entity = 0; entity < ENTITIES; entity++) {
        const EntityPlan *plan = &plans[entity];
        int relations = plan->gt + plan->nx;
        PyObject *id = PyTuple_GET_ITEM(ids, entity);
        if (id == Py_None) {
            memset(out, 0, relations * s->windows * sizeof(int64_t));
            out += relations * s->windows;
            continue;
        }
        Entry *e = NULL;
        PyObject *address = PyDict_GetItemWithError(s->tables[entity], id);
        if (address != NULL) {
            e = PyLong_AsVoidPtr(address);
        }
        else if (PyErr_Occurred())
            return -1;
        int touched = 0;
        for (int i = 0; i < relations; i++, out += s->windows) {
            const Step *st = &plan->steps[i];
            PyObject *member = PyTuple_GET_ITEM(members, st->kind);
            if (e == NULL) {
                /* An entity is stored from the first member it is written (none when the
                 * event names no member, or only reads): until then its counts are 0. */
                if (!counts_as_member(member)) {
                    count_same(s, 0, out);
                    continue;
                }
                if ((e = new_entry(s, entity, id, now, now_ms)) == NULL)
                    return -1;
            }
            if (step(s, &e->relations[st->slot], member, i >= plan->gt, now, horizon, out,
                     &touched) < 0)
                return -1;
        }
        if (e == NULL)
            continue;
        if (touched) {
            if (now_ms < e->first)
                e->first = now_ms;
            if (keeps_blob && entity == s->user) {
                Py_INCREF(blob);
                Py_XSETREF(e->blob, blob);
                e->blob_at = now;
            }
            e->last_write = now;
            if (e != s->newest) {
                unlink_entry(s, e);
                append_entry(s, e);
            }
        }
        if (entity == s->device) {
            Py_XSETREF(*first, PyLong_FromLongLong(e->first));
            if (*first == NULL)
                return -1;
        }
        else if (entity == s->user && e->blob != NULL && now - s->ipqs_window <= e->blob_at &&
                 e->blob_at <= now) {
            Py_INCREF(e->blob);
            Py_XSETREF(*joined, e->blob);
        }
    }
    return 0;
}

static PyObject *
store_record_many(Store *s, PyObject *args)
{
    PyObject *inputs_arg, *moments_arg, *blobs_arg;
    if (!PyArg_ParseTuple(args, "OOO:record_many", &inputs_arg, &moments_arg, &blobs_arg))
        return NULL;
    if (s->space_index == NULL) {
        PyErr_SetString(PyExc_TypeError, "ReuseTables.__init__ was not called");
        return NULL;
    }
    PyObject *inputs = PySequence_Fast(inputs_arg, "inputs: a sequence");
    PyObject *moments = PySequence_Fast(moments_arg, "moments: a sequence");
    PyObject *blobs = PySequence_Fast(blobs_arg, "blobs: a sequence");
    PyObject *counts = NULL, *firsts = NULL, *joins = NULL, *result = NULL;
    if (inputs == NULL || moments == NULL || blobs == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(inputs);
    if (PySequence_Fast_GET_SIZE(moments) != n || PySequence_Fast_GET_SIZE(blobs) != n) {
        PyErr_SetString(PyExc_ValueError, "inputs, moments and blobs differ in length");
        goto done;
    }
    Py_ssize_t width = 0;
    for (int entity = 0; entity < ENTITIES; entity++)
        width += (Py_ssize_t)(s->plans[0][entity].gt + s->plans[0][entity].nx) * s->windows;
    counts = PyBytes_FromStringAndSize(NULL, n * width * (Py_ssize_t)sizeof(int64_t));
    firsts = PyList_New(n);
    joins = PyList_New(n);
    if (counts == NULL || firsts == NULL || joins == NULL)
        goto done;
    int64_t *out = (int64_t *)PyBytes_AS_STRING(counts);
    for (Py_ssize_t i = 0; i < n; i++, out += width) {
        PyObject *first = NULL, *joined = NULL;
        if (record(s, PySequence_Fast_GET_ITEM(inputs, i), PySequence_Fast_GET_ITEM(moments, i),
                   PySequence_Fast_GET_ITEM(blobs, i), out, &first, &joined) < 0) {
            /* An event that fails part way may have named its device's first sighting. */
            Py_XDECREF(first);
            Py_XDECREF(joined);
            goto done;
        }
        if (first == NULL)
            first = Py_NewRef(Py_None);
        if (joined == NULL)
            joined = Py_NewRef(Py_None);
        PyList_SET_ITEM(firsts, i, first);
        PyList_SET_ITEM(joins, i, joined);
    }
    result = PyTuple_Pack(3, counts, firsts, joins);
done:
    Py_XDECREF(inputs);
    Py_XDECREF(moments);
    Py_XDECREF(blobs);
    Py_XDECREF(counts);
    Py_XDECREF(firsts);
    Py_XDECREF(joins);
    return result;
}

/* ---- construction ---- */

static int
read_steps(PyObject *steps, Step *into, int room, int *count)
{
    PyObject *fast = PySequence_Fast(steps, "steps: a sequence of (kind, slot)");
    if (fast == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > room) {
        Py_DECREF(fast);
        PyErr_SetString(PyExc_ValueError, "too many relations for one entity");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "ii", &into[i].kind,
                              &into[i].slot)) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    *count = (int)n;
    return 0;
}

static int
store_init(Store *s, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"windows", "cap", "ipqs_window", "kinds", "device", "user",
                               "slots", "plans", NULL};
    PyObject *windows, *slots, *plans;
    if (s->space_index != NULL) {
        PyErr_SetString(PyExc_TypeError, "a store is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!ndiiiO!O!:ReuseTables", keywords,
                                     &PyTuple_Type, &windows, &s->cap, &s->ipqs_window,
                                     &s->kinds, &s->device, &s->user, &PyTuple_Type, &slots,
                                     &PyDict_Type, &plans))
        return -1;
    Py_ssize_t nwindows = PyTuple_GET_SIZE(windows);
    if (nwindows < 1 || nwindows > MAX_WINDOWS || s->cap < 1 || s->kinds < 1 ||
        PyTuple_GET_SIZE(slots) != ENTITIES || PyDict_GET_SIZE(plans) < 1 ||
        PyDict_GET_SIZE(plans) > MAX_SPACES || s->device < 0 || s->device >= ENTITIES ||
        s->user < 0 || s->user >= ENTITIES) {
        PyErr_SetString(PyExc_ValueError, "windows, cap, slots or plans out of range");
        return -1;
    }
    s->windows = (int)nwindows;
    for (int w = 0; w < s->windows; w++) {
        s->window[w] = PyFloat_AsDouble(PyTuple_GET_ITEM(windows, w));
        if (s->window[w] == -1.0 && PyErr_Occurred())
            return -1;
    }
    for (int e = 0; e < ENTITIES; e++) {
        s->slots[e] = (int)PyLong_AsLong(PyTuple_GET_ITEM(slots, e));
        if (s->slots[e] < 0 || s->slots[e] > MAX_SLOTS) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "slots out of range");
            return -1;
        }
    }
    s->space_index = PyDict_New();
    if (s->space_index == NULL)
        return -1;
    PyObject *space, *entities;
    Py_ssize_t position = 0;
    int relations[ENTITIES] = {0};
    while (PyDict_Next(plans, &position, &space, &entities)) {
        int index = s->spaces;
        PyObject *number = PyLong_FromLong(index);
        if (number == NULL || PyDict_SetItem(s->space_index, space, number) < 0) {
            Py_XDECREF(number);
            return -1;
        }
        Py_DECREF(number);
        if (!PyTuple_Check(entities) || PyTuple_GET_SIZE(entities) != ENTITIES) {
            PyErr_SetString(PyExc_ValueError, "a plan: (gt steps, nx steps) per entity");
            return -1;
        }
        for (int e = 0; e < ENTITIES; e++) {
            EntityPlan *plan = &s->plans[index][e];
            PyObject *gt, *nx;
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(entities, e), "OO", &gt, &nx) ||
                read_steps(gt, plan->steps, MAX_STEPS, &plan->gt) < 0 ||
                read_steps(nx, plan->steps + plan->gt, MAX_STEPS - plan->gt, &plan->nx) < 0)
                return -1;
            for (int i = 0; i < plan->gt + plan->nx; i++) {
                if (plan->steps[i].kind < 0 || plan->steps[i].kind >= s->kinds ||
                    plan->steps[i].slot < 0 || plan->steps[i].slot >= s->slots[e]) {
                    PyErr_SetString(PyExc_ValueError, "a step's kind or slot out of range");
                    return -1;
                }
            }
            /* Every space writes the same counts per entity: one block width. */
            if (index > 0 && plan->gt + plan->nx != relations[e]) {
                PyErr_SetString(PyExc_ValueError, "spaces differ in their relations");
                return -1;
            }
            relations[e] = plan->gt + plan->nx;
        }
        s->spaces++;
    }
    for (int e = 0; e < ENTITIES; e++) {
        s->tables[e] = PyDict_New();
        if (s->tables[e] == NULL)
            return -1;
    }
    return 0;
}

static void
store_dealloc(Store *s)
{
    while (s->oldest) {
        Entry *e = s->oldest;
        unlink_entry(s, e);
        free_entry(s, e);
    }
    for (int e = 0; e < ENTITIES; e++)
        Py_XDECREF(s->tables[e]);
    Py_XDECREF(s->space_index);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static Py_ssize_t
store_len(Store *s)
{
    return s->entries;
}

static PyMethodDef store_methods[] = {
    {"record_many", (PyCFunction)store_record_many, METH_VARARGS,
     "record_many(inputs, moments, blobs) -> (counts, first_seen, joined)"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods store_as_sequence = {
    .sq_length = (lenfunc)store_len,
};

static PyTypeObject StoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "service._reuse_native.ReuseTables",
    .tp_doc = "The reuse store's entities and relations (see reuse_memory.py).",
    .tp_basicsize = sizeof(Store),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)store_init,
    .tp_dealloc = (destructor)store_dealloc,
    .tp_methods = store_methods,
    .tp_as_sequence = &store_as_sequence,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "service._reuse_native",
    .m_doc = "The in-memory reuse store's event loop, compiled (see reuse_memory.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__reuse_native(void)
{
    if (PyType_Ready(&StoreType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&StoreType);
    if (PyModule_AddObject(m, "ReuseTables", (PyObject *)&StoreType) < 0) {
        Py_DECREF(&StoreType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
