// ECharts, only the parts the console draws (bar charts on canvas).
import * as echarts from "echarts/core";
import { BarChart } from "echarts/charts";
import { GridComponent, TitleComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, GridComponent, TitleComponent, TooltipComponent, CanvasRenderer]);

/** barChart draws one series of counts under a title. */
export function barChart(el: HTMLElement, title: string, labels: string[], values: number[]): void {
  const chart = echarts.init(el, undefined, { renderer: "canvas" });
  chart.setOption({
    title: { text: title, textStyle: { fontSize: 14 } },
    tooltip: {},
    xAxis: { type: "category", data: labels },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "bar", data: values }],
    animation: false,
  });
}
