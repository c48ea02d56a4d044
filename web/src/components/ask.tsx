// The overview's Ask box: a question in plain language to POST /api/v1/ask, and its answer:
// the sentence, the plan as chips (so that a user can check what was understood), and the
// data drawn as the answer's chart hint says. A question that was not understood shows why,
// and its suggestions are buttons that ask them.
import { useId, useRef, useState, type FormEvent } from "react";
import { api, ApiError } from "../api";
import {
  answerValue,
  barRows,
  bigNumber,
  chartKind,
  exampleQuestions,
  planChips,
  seriesChartData,
  seriesName,
  type AskAnswer,
  type Understood,
} from "../ask";
import { Chart } from "./Chart";
import { Button, Card, ErrorBox, Table, inputClass, td } from "./ui";

export function AskBox({ dark }: { dark: boolean }) {
  const [question, setQuestion] = useState("");
  const [answer, setAnswer] = useState<AskAnswer | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const seq = useRef(0);
  const id = useId();

  async function ask(q: string) {
    const text = q.trim();
    setQuestion(q);
    if (!text) return;
    const mine = ++seq.current;
    setBusy(true);
    setError(null);
    try {
      const a = await api<AskAnswer>("/api/v1/ask", { method: "POST", body: { question: text } });
      if (mine !== seq.current) return;
      setAnswer(a);
    } catch (e) {
      if (mine !== seq.current) return;
      setAnswer(null);
      setError(e);
    } finally {
      if (mine === seq.current) setBusy(false);
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    void ask(question);
  }

  // A 400 naming the question goes under the field; anything else in the error box.
  const fieldError = error instanceof ApiError && error.field === "question" ? error.message : undefined;
  return (
    <Card title="Ask" className="mb-4">
      <form onSubmit={submit} className="flex flex-wrap items-end gap-2" data-testid="ask-form">
        <div className="min-w-0 flex-1">
          <label htmlFor={id} className="block text-sm font-medium">
            Ask a question about the plant
          </label>
          <input
            id={id}
            name="question"
            type="text"
            value={question}
            onChange={(e) => setQuestion(e.target.value)}
            placeholder="which pumps on line 2 ran hotter than 80 °C yesterday?"
            maxLength={500}
            autoComplete="off"
            aria-invalid={fieldError ? true : undefined}
            aria-describedby={fieldError ? id + "-err" : undefined}
            className={inputClass + (fieldError ? " border-red-600 dark:border-red-400" : "")}
          />
        </div>
        <Button type="submit" disabled={busy || !question.trim()}>
          Ask
        </Button>
      </form>
      {fieldError && (
        <p id={id + "-err"} className="field-error mt-1 text-sm font-medium text-red-700 dark:text-red-300">
          {fieldError}
        </p>
      )}
      <div className="mt-2 flex flex-wrap items-center gap-2 text-sm">
        <span className="text-slate-600 dark:text-slate-400">Try:</span>
        {exampleQuestions.map((q) => (
          <button
            key={q}
            type="button"
            onClick={() => void ask(q)}
            disabled={busy}
            data-testid="ask-example"
            className="rounded-full border border-cyan-700 px-3 py-0.5 text-cyan-900 hover:bg-cyan-50 focus:outline-none focus:ring-2 focus:ring-cyan-600 disabled:opacity-60 dark:border-cyan-400 dark:text-cyan-200 dark:hover:bg-slate-800"
          >
            {q}
          </button>
        ))}
      </div>
      {busy && (
        <p role="status" className="mt-3 flex items-center gap-2 text-sm text-slate-700 dark:text-slate-300">
          <span
            className="inline-block h-4 w-4 animate-spin rounded-full border-2 border-cyan-700 border-t-transparent"
            aria-hidden="true"
            data-testid="ask-spinner"
          />
          Asking…
        </p>
      )}
      {!fieldError && <ErrorBox error={error} title="The question could not be answered" />}
      {!busy && answer && answer.understood && <AnswerView answer={answer} dark={dark} />}
      {!busy && answer && !answer.understood && (
        <div className="mt-3" data-testid="ask-not-understood">
          <p className="font-medium">Not understood: “{answer.question}”</p>
          <ul className="ml-5 list-disc text-sm">
            {answer.not_understood.map((why) => (
              <li key={why} data-testid="ask-reason">
                {why}
              </li>
            ))}
          </ul>
          {answer.suggestions.length > 0 && (
            <div className="mt-2 flex flex-wrap items-center gap-2 text-sm">
              <span className="text-slate-600 dark:text-slate-400">Ask instead:</span>
              {answer.suggestions.map((s) => (
                <Button key={s} kind="secondary" onClick={() => void ask(s)} data-testid="ask-suggestion">
                  {s}
                </Button>
              ))}
            </div>
          )}
        </div>
      )}
    </Card>
  );
}

function AnswerView({ answer, dark }: { answer: Understood; dark: boolean }) {
  return (
    <div className="mt-3" data-testid="ask-answer">
      <p className="text-lg" data-testid="ask-sentence">
        {answer.answer}
      </p>
      <ul className="mt-2 flex flex-wrap gap-2 text-xs" aria-label="What was understood">
        {planChips(answer.plan).map((c) => (
          <li
            key={c.label}
            title={c.title}
            data-testid="ask-chip"
            data-label={c.label}
            className="rounded-full bg-slate-100 px-2.5 py-1 text-slate-800 dark:bg-slate-800 dark:text-slate-100"
          >
            <span className="font-semibold">{c.label}:</span> {c.text}
            {c.title && <span className="sr-only"> ({c.title})</span>}
          </li>
        ))}
      </ul>
      <div className="mt-3">
        <AnswerChart answer={answer} dark={dark} />
      </div>
    </div>
  );
}

function AnswerChart({ answer, dark }: { answer: Understood; dark: boolean }) {
  const kind = chartKind(answer);
  const unit = answer.chart?.unit ?? answer.plan.unit ?? "";
  if (kind === "number") {
    const v = bigNumber(answer);
    return (
      <p className="text-4xl font-semibold" data-testid="ask-number">
        {answerValue(v)}
        {unit && <span className="ml-1 text-xl font-normal">{unit}</span>}
      </p>
    );
  }
  if (kind === "bar") return <Bars answer={answer} unit={unit} />;
  if (kind === "line") return <Lines answer={answer} dark={dark} />;
  if (kind === "table") {
    const cols = answer.data?.columns ?? [];
    return (
      <div data-testid="ask-table">
        <Table caption={"Data behind: " + answer.answer} head={cols}>
          {(answer.data?.rows ?? []).map((row, i) => (
            <tr key={i}>
              {cols.map((c, j) => (
                <td key={c} className={td(typeof row[j] === "number" ? "font-mono" : "")}>
                  {answerValue(row[j])}
                </td>
              ))}
            </tr>
          ))}
        </Table>
      </div>
    );
  }
  return null;
}

// Per-device (or per-asset) values as horizontal bars, longest for the largest magnitude.
function Bars({ answer, unit }: { answer: Understood; unit: string }) {
  const bars = barRows(answer);
  const top = Math.max(...bars.map((b) => Math.abs(b.value)), 0) || 1;
  const y = answer.chart?.y ?? "";
  return (
    <ol className="space-y-1" data-testid="ask-bars" aria-label={`${y} ${unit}`.trim()}>
      {bars.map((b) => (
        <li key={b.label} className="flex items-center gap-3 text-sm" data-testid="ask-bar">
          <span className="w-32 shrink-0 truncate" title={b.label}>
            {b.label}
          </span>
          <span className="h-3 flex-1 rounded bg-slate-100 dark:bg-slate-800" aria-hidden="true">
            <span
              className="block h-3 rounded bg-cyan-700 dark:bg-cyan-400"
              style={{ width: `${(Math.abs(b.value) / top) * 100}%` }}
            />
          </span>
          <span className="w-28 shrink-0 text-right font-mono" data-testid="ask-bar-value">
            {answerValue(b.value)}
            {unit && " " + unit}
          </span>
        </li>
      ))}
    </ol>
  );
}

// Series over time, one dashboard chart each (at most six; the table of the rest is the data).
function Lines({ answer, dark }: { answer: Understood; dark: boolean }) {
  const series = (answer.data?.series ?? []).slice(0, 6);
  const from = Date.parse(answer.plan.from ?? "") / 1000;
  const to = Date.parse(answer.plan.to ?? "") / 1000;
  const all = series.flatMap((s) => seriesChartData(s).xs);
  const full: [number, number] =
    Number.isFinite(from) && Number.isFinite(to) && to > from
      ? [from, to]
      : [Math.min(...all, Date.now() / 1000 - 3600), Math.max(...all, Date.now() / 1000)];
  const [zoom, setZoom] = useState<[number, number] | null>(null);
  return (
    <div className="grid gap-4 lg:grid-cols-2" data-testid="ask-lines">
      {series.map((s) => (
        <Chart
          key={seriesName(s)}
          metric={seriesName(s)}
          data={seriesChartData(s)}
          range={zoom ?? full}
          dark={dark}
          onZoom={(a, b) => setZoom([a, b])}
          anomalyBand={false}
        />
      ))}
    </div>
  );
}
