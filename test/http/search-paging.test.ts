/**
 * Keyset paging and totals through HTTP (search.html#paging, #total): cursors stay valid while
 * other writes happen, for the default order and for multi-key _sort with mixed directions and
 * missing values; previous / self / first links; _offset; _total and _summary=count. On each engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, ENGINES, startTestServer, type TestServer } from '../support/server.js';

/** 25 patients of one family: birth dates on 5 days (ties), three without one (sorted last). */
function patients(family: string, n = 25, from = 0): any[] {
  return Array.from({ length: n }, (_, k) => {
    const i = k + from;
    return {
      resourceType: 'Patient',
      name: [{ family: `${family}${String.fromCharCode(97 + (i % 26))}${i}`, given: ['P'] }],
      ...(i % 9 === 4 ? {} : { birthDate: `1980-01-0${(i % 5) + 1}` }),
    };
  });
}

const ids = (b: any) => (b.entry ?? []).filter((e: any) => e.search.mode === 'match').map((e: any) => e.resource.id);
const linkOf = (b: any, rel: string) => b.link?.find((l: any) => l.relation === rel)?.url as string | undefined;

describe.each(ENGINES)('search paging on %s', (engine) => {
  let t: TestServer;
  const get = async (url: string) => {
    const r = await call('', 'GET', url.startsWith('http') ? url : `${t.base}${url}`);
    expect(r.status, `${url}: ${r.text.slice(0, 300)}`).toBe(200);
    return r.body;
  };
  const create = async (list: any[]) => {
    const out: any[] = [];
    for (const p of list) {
      const r = await call(t.base, 'POST', '/Patient', p);
      expect(r.status).toBe(201);
      out.push(r.body);
    }
    return out;
  };
  /** Follow next links from `first`; optionally write between the first and second page. */
  const allPages = async (first: string, between?: () => Promise<unknown>) => {
    const pages: any[] = [];
    let url: string | undefined = first;
    while (url) {
      const b = await get(url);
      pages.push(b);
      if (pages.length === 1) await between?.();
      url = linkOf(b, 'next');
      expect(pages.length).toBeLessThan(20);
    }
    return pages;
  };
  beforeAll(async () => {
    t = await startTestServer(engine);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('25 matches in pages of 10: 3 pages, every id once, in last-updated order', async () => {
    const made = await create(patients('Keyset'));
    const pages = await allPages('/Patient?family=Keyset&_count=10');
    expect(pages.map((p) => ids(p).length)).toEqual([10, 10, 5]);
    expect(pages.flatMap(ids)).toEqual(made.map((p) => p.id));
    expect(linkOf(pages[1], 'next')).toMatch(/_cursor=/);
    expect(linkOf(pages[1], 'next')).not.toMatch(/_offset/);
    // self reflects the page it is on, and gives it again.
    expect(ids(await get(linkOf(pages[1], 'self')!))).toEqual(ids(pages[1]));
    expect(linkOf(pages[0], 'self')).toBe(`${t.base}/Patient?family=Keyset&_count=10`);
    // previous: back through the pages (page 1 again in full, without a cursor).
    const back = await get(linkOf(pages[2], 'previous')!);
    expect(ids(back)).toEqual(ids(pages[1]));
    const front = await get(linkOf(back, 'previous')!);
    expect(ids(front)).toEqual(ids(pages[0]));
    expect(linkOf(front, 'previous')).toBeUndefined();
    expect(linkOf(pages[2], 'first')).toBe(`${t.base}/Patient?family=Keyset&_count=10`);
    // _offset still works.
    expect(ids(await get('/Patient?family=Keyset&_count=10&_offset=20'))).toEqual(made.slice(20).map((p) => p.id));
    // A cursor is only valid for the order it was made for.
    const cursor = new URL(linkOf(pages[0], 'next')!).searchParams.get('_cursor')!;
    expect((await call(t.base, 'GET', `/Patient?family=Keyset&_sort=family&_cursor=${cursor}`)).status).toBe(400);
    expect((await call(t.base, 'GET', '/Patient?_cursor=garbage')).status).toBe(400);
  });

  it('writes between pages neither skip nor repeat: new matches come only after the originals', async () => {
    const made = await create(patients('Moving'));
    let added: any[] = [];
    const pages = await allPages('/Patient?family=Moving&_count=10', async () => {
      added = await create(patients('Moving', 5, 100));
      // An update of a resource already seen moves it to the end (it changed); one not yet seen likewise.
      const r = await call(t.base, 'PUT', `/Patient/${made[3].id}`, { ...made[3], gender: 'other' });
      expect(r.status).toBe(200);
    });
    const seen = pages.flatMap(ids);
    const originals = made.map((p) => p.id).filter((id) => id !== made[3].id);
    // Every original once, in order, none skipped...
    expect(seen.filter((id: string) => originals.includes(id))).toEqual(originals);
    // ...then the new ones, then the updated one: it was seen on page 1 and comes again as changed.
    expect(seen.slice(originals.length + 1)).toEqual([...added.map((p) => p.id), made[3].id]);
    expect(seen.slice(0, 10)).toContain(made[3].id);
  });

  it('_sort=-birthdate,family pages in the same order as one page, also with inserts between pages', async () => {
    const made = await create(patients('Sorted'));
    const whole = ids(await get('/Patient?family=Sorted&_sort=-birthdate,family&_count=100'));
    // Hand-checked order: birth date descending (none last), then family ascending.
    const expected = [...made]
      .sort((a, b) => (b.birthDate ?? '').localeCompare(a.birthDate ?? '') || a.name[0].family.toLowerCase().localeCompare(b.name[0].family.toLowerCase()))
      .map((p) => p.id);
    expect(whole).toEqual(expected);
    const paged = (await allPages('/Patient?family=Sorted&_sort=-birthdate,family&_count=10')).flatMap(ids);
    expect(paged).toEqual(whole);

    // Mixed directions and missing values, with new matches written after page 1.
    let added: any[] = [];
    const pages = await allPages('/Patient?family=Sorted&_sort=birthdate,-family&_count=7', async () => {
      added = await create(patients('Sorted', 6, 200));
    });
    const seen = pages.flatMap(ids);
    expect(new Set(seen).size).toBe(seen.length);
    const asc = [...made]
      .sort((a, b) => (a.birthDate ? (b.birthDate ? a.birthDate.localeCompare(b.birthDate) : -1) : b.birthDate ? 1 : 0) || b.name[0].family.toLowerCase().localeCompare(a.name[0].family.toLowerCase()))
      .map((p) => p.id);
    expect(seen.filter((id: string) => made.some((p) => p.id === id))).toEqual(asc);
    // Page 1 was read before the inserts; later ones may or may not come, but never twice.
    expect(seen.length).toBeGreaterThanOrEqual(made.length);
    expect(seen.length).toBeLessThanOrEqual(made.length + added.length);
    // previous with a sort: back from the last page gives the page before it.
    const last = pages[pages.length - 1];
    expect(ids(await get(linkOf(last, 'previous')!))).toEqual(ids(pages[pages.length - 2]));
  });

  it('_total: none, estimate, accurate; by default only when known for free; _summary=count', async () => {
    await create(patients('Totals', 12));
    expect((await get('/Patient?family=Totals&_count=5')).total).toBeUndefined();
    expect((await get('/Patient?family=Totals&_count=50')).total).toBe(12);
    expect((await get('/Patient?family=Totals&_count=5&_total=accurate')).total).toBe(12);
    expect((await get('/Patient?family=Totals&_count=50&_total=none')).total).toBeUndefined();
    const est = await get('/Patient?family=Totals&_count=5&_total=estimate');
    expect(typeof est.total).toBe('number');
    expect(est.total).toBeGreaterThanOrEqual(0);
    expect(ids(est)).toHaveLength(5);
    // On a later page the total is not known for free.
    const p2 = await get(linkOf(await get('/Patient?family=Totals&_count=10'), 'next')!);
    expect(ids(p2)).toHaveLength(2);
    expect(p2.total).toBeUndefined();
    const count = await get('/Patient?family=Totals&_summary=count');
    expect(count.total).toBe(12);
    expect(count.entry).toBeUndefined();
    expect(linkOf(count, 'next')).toBeUndefined();
    expect((await get('/Patient?family=Totals&_count=0')).total).toBe(12);
    expect((await get('/Patient?family=Nobody-at-all')).total).toBe(0);
  });
});
