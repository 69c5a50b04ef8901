// ECharts, only the parts the console draws (bar charts on canvas; the
// line chart, which only the assessment draws, is in linechart.ts).
import * as echarts from "echarts/core";
import { BarChart } from "echarts/charts";
import { GridComponent, TitleComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, GridComponent, TitleComponent, TooltipComponent, CanvasRenderer]);

/** fresh is a chart on el, replacing one drawn there before. */
export function fresh(el: HTMLElement): echarts.ECharts {
  echarts.getInstanceByDom(el)?.dispose();
  return echarts.init(el, undefined, { renderer: "canvas" });
}

/** barChart draws one series of counts under a title. */
export function barChart(el: HTMLElement, title: string, labels: string[], values: number[]): void {
  fresh(el).setOption({
    title: { text: title, textStyle: { fontSize: 14 } },
    tooltip: {},
    xAxis: { type: "category", data: labels },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", data: values }],
    animation: false,
  });
}

/**
 * scoreBars draws scores (0–100) by name; onPick gets the index of a
 * clicked bar.
 */
export function scoreBars(el: HTMLElement, title: string, labels: string[], values: number[], onPick?: (i: number) => void): void {
  const chart = fresh(el);
  chart.setOption({
    title: { text: title, textStyle: { fontSize: 14 } },
    tooltip: {},
    grid: { bottom: 80 },
    xAxis: { type: "category", data: labels, axisLabel: { rotate: labels.length > 8 ? 45 : 0, interval: labels.length > 40 ? "auto" : 0 } },
    yAxis: { type: "value", min: 0, max: 100 },
    series: [{ type: "bar", data: values }],
    animation: false,
  });
  if (onPick) chart.on("click", (p) => onPick(p.dataIndex));
}

/** dispose removes the charts drawn on els. */
export function dispose(...els: HTMLElement[]): void {
  for (const el of els) echarts.getInstanceByDom(el)?.dispose();
}
