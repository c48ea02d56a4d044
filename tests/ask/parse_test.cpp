// The grammar over a vocabulary like the demo plant's, at Saturday 2026-12-05 10:30 Berlin:
// each question with its exact plan, or why it is not understood.
#include <gtest/gtest.h>

#include <cstdio>
#include <iterator>

#include "ask/demo_vocabulary.h"
#include "ask/time_text.h"
#include "ask/words.h"

namespace clisonix::ask::testing {
namespace {

const vocabulary& demo() {
    static const vocabulary v = demo_vocabulary();
    return v;
}

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// One line per plan, every member that is set: what a test compares exactly.
std::string describe(const plan& p, const vocabulary& v) {
    auto zone = *detail::zone_named(v.time_zone);
    std::string s(detail::kind_name(p.kind));
    if (!p.devices.empty()) {
        s += " devices=";
        for (size_t i = 0; i < p.devices.size(); ++i)
            s += (i ? "," : "") + p.devices[i];
    }
    if (!p.device_type.empty()) s += " type=" + p.device_type;
    if (!p.asset.empty()) s += " asset=" + p.asset;
    if (!p.metric.empty()) s += " metric=" + p.metric;
    if (!p.unit.empty()) s += " unit=" + p.unit;
    s += " agg=" + std::string(detail::aggregate_name(p.agg));
    s += " group=" + std::string(detail::grouping_name(p.group_by));
    if (!p.asset_level.empty()) s += ":" + p.asset_level;
    if (p.filter) s += " filter" + p.filter->op + number(p.filter->value);
    if (p.threshold) s += " threshold" + p.threshold->op + number(p.threshold->value);
    if (!p.order.empty()) s += " order=" + p.order;
    if (p.limit) s += " limit=" + std::to_string(*p.limit);
    if (!p.alarm_status.empty()) s += " status=" + p.alarm_status;
    s += " time=\"" + p.time_text + "\" " + detail::rfc3339(p.from_ms, zone).substr(5, 11) + ".." +
         detail::rfc3339(p.to_ms, zone).substr(5, 11);
    return s;
}

std::string read(std::string_view question, const vocabulary& v = demo(),
                 int64_t now = saturday_1030) {
    auto r = parse(question, v, {now});
    if (auto* p = std::get_if<plan>(&r)) {
        EXPECT_EQ(p->source, "parser");
        return describe(*p, v);
    }
    const auto& n = std::get<not_understood>(r);
    std::string s = "NOT:";
    for (const auto& reason : n.reasons)
        s += " " + reason + ";";
    return s;
}

struct case_ {
    const char* question;
    const char* plan;
};

// Phrased the way people on the floor ask: names spelt loosely, units in words, typos.
const case_ demo_cases[] = {
    {"what is the temperature of pump-01 now?",
     "telemetry devices=pump-01 metric=temperature unit=°C agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"what is the temperature of pump 4 right now",
     "telemetry devices=pump-04 metric=temperature unit=°C agg=last group=device time=\"right "
     "now\" 12-05T10:30..12-05T10:30"},
    {"what's the temp of pump4",
     "telemetry devices=pump-04 metric=temperature unit=°C agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"Temperature of PUMP-02?",
     "telemetry devices=pump-02 metric=temperature unit=°C agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"what is the current temperature of pump-01",
     "telemetry devices=pump-01 metric=temperature unit=°C agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"what is the current of pump-01",
     "telemetry devices=pump-01 metric=current unit=A agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"show me the amps on conveyor 2 over the last hour",
     "telemetry devices=conveyor-02 metric=current unit=A agg=mean group=device time=\"over the "
     "last hour\" 12-05T09:30..12-05T10:30"},
    {"whats the vib on compressor 4",
     "telemetry devices=compressor-04 metric=vibration_rms unit=mm/s agg=last group=device "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"what is the speed of conveyor-05",
     "telemetry devices=conveyor-05 metric=rpm unit=rpm agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"what is the pressure of compressor 6 currently",
     "telemetry devices=compressor-06 metric=pressure unit=bar agg=last group=device "
     "time=\"currently\" 12-05T10:30..12-05T10:30"},
    {"what is the flow rate of pump 7 at the moment",
     "telemetry devices=pump-07 metric=flow unit=m³/h agg=last group=device time=\"at the moment\" "
     "12-05T10:30..12-05T10:30"},
    {"latest throughput of pump-05",
     "telemetry devices=pump-05 metric=flow unit=m³/h agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"how hot is pump 3",
     "telemetry devices=pump-03 metric=temperature unit=°C agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"is pump 6 running hot right now",
     "telemetry devices=pump-06 metric=temperature unit=°C agg=last group=device time=\"right "
     "now\" 12-05T10:30..12-05T10:30"},
    {"temprature of compresor 3",
     "telemetry devices=compressor-03 metric=temperature unit=°C agg=last group=device "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"vibraton of pump 1",
     "telemetry devices=pump-01 metric=vibration_rms unit=mm/s agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"pumps 1 and 2 temperature now",
     "telemetry devices=pump-01,pump-02 metric=temperature unit=°C agg=last group=device "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"temperature of pump-01 and pump-02 yesterday",
     "telemetry devices=pump-01,pump-02 metric=temperature unit=°C agg=mean group=device "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"which pumps on north line 2 ran hotter than 80 °C yesterday?",
     "telemetry type=pump asset=north-line-2 metric=temperature unit=°C agg=max group=device "
     "filter>80 order=desc time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"which pumps ran hotter than 80 degrees yesterday",
     "telemetry type=pump metric=temperature unit=°C agg=max group=device filter>80 order=desc "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"which compressors ran below 6.5 bar this week",
     "telemetry type=compressor metric=pressure unit=bar agg=min group=device filter<6.5 order=asc "
     "time=\"this week\" 11-30T00:00..12-05T10:30"},
    {"which conveyors are above 3 mm/s",
     "telemetry type=conveyor metric=vibration_rms unit=mm/s agg=last group=device filter>3 "
     "order=desc time=\"now\" 12-05T10:30..12-05T10:30"},
    {"how many pumps are above 60 °C",
     "telemetry type=pump metric=temperature unit=°C agg=last group=device filter>60 order=desc "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"is pump 7 temperature above 70",
     "telemetry devices=pump-07 metric=temperature unit=°C agg=last group=device filter>70 "
     "order=desc time=\"now\" 12-05T10:30..12-05T10:30"},
    {"which pumps had a current of at least 25 amps today",
     "telemetry type=pump metric=current unit=A agg=max group=device filter>=25 order=desc "
     "time=\"today\" 12-05T00:00..12-05T10:30"},
    {"which compressors went over 9 bar in the last 6 hours",
     "telemetry type=compressor metric=pressure unit=bar agg=max group=device filter>9 order=desc "
     "time=\"in the last 6 hours\" 12-05T04:30..12-05T10:30"},
    {"average temperature of the pumps today",
     "telemetry type=pump metric=temperature unit=°C agg=mean group=none time=\"today\" "
     "12-05T00:00..12-05T10:30"},
    {"what is the average temperature of the pumps now?",
     "telemetry type=pump metric=temperature unit=°C agg=mean group=none time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"mean vibration of compressor-01 yesterday",
     "telemetry devices=compressor-01 metric=vibration_rms unit=mm/s agg=mean group=device "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"typical pressure on north line 1 this week",
     "telemetry asset=north-line-1 metric=pressure unit=bar agg=mean group=none time=\"this week\" "
     "11-30T00:00..12-05T10:30"},
    {"max vibration on north line 1 yesterday",
     "telemetry asset=north-line-1 metric=vibration_rms unit=mm/s agg=max group=none "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"what was the peak current of conveyor-04 last week",
     "telemetry devices=conveyor-04 metric=current unit=A agg=max group=device time=\"last week\" "
     "11-23T00:00..11-30T00:00"},
    {"highest temperature of pump-08 this month",
     "telemetry devices=pump-08 metric=temperature unit=°C agg=max group=device time=\"this "
     "month\" 12-01T00:00..12-05T10:30"},
    {"what was the lowest pressure on compressor-05 last night",
     "telemetry devices=compressor-05 metric=pressure unit=bar agg=min group=device time=\"last "
     "night\" 12-04T22:00..12-05T06:00"},
    {"minimum speed of the conveyors since monday 06:00",
     "telemetry type=conveyor metric=rpm unit=rpm agg=min group=none time=\"since monday 06:00\" "
     "11-30T06:00..12-05T10:30"},
    {"total flow of the pumps yesterday",
     "telemetry type=pump metric=flow unit=m³/h agg=sum group=none time=\"yesterday\" "
     "12-04T00:00..12-05T00:00"},
    {"sum of flow on south line 1 today",
     "telemetry asset=south-line-1 metric=flow unit=m³/h agg=sum group=none time=\"today\" "
     "12-05T00:00..12-05T10:30"},
    {"p95 vibration of pump-02 yesterday",
     "telemetry devices=pump-02 metric=vibration_rms unit=mm/s agg=p95 group=device "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"90th percentile current of the compressors since monday 06:00",
     "telemetry type=compressor metric=current unit=A agg=p90 group=none time=\"since monday "
     "06:00\" 11-30T06:00..12-05T10:30"},
    {"median flow of pump-01 between 8 and 10 this morning",
     "telemetry devices=pump-01 metric=flow unit=m³/h agg=p50 group=device time=\"between 8 and 10 "
     "this morning\" 12-05T08:00..12-05T10:00"},
    {"99th percentile temperature of pump-03 in the last 3 hours",
     "telemetry devices=pump-03 metric=temperature unit=°C agg=p99 group=device time=\"in the last "
     "3 hours\" 12-05T07:30..12-05T10:30"},
    {"how much did the temperature of pump-03 rise in the last 2 hours",
     "telemetry devices=pump-03 metric=temperature unit=°C agg=change group=device time=\"in the "
     "last 2 hours\" 12-05T08:30..12-05T10:30"},
    {"change in pressure of compressor-02 today",
     "telemetry devices=compressor-02 metric=pressure unit=bar agg=change group=device "
     "time=\"today\" 12-05T00:00..12-05T10:30"},
    {"is the vibration of pump-05 rising",
     "telemetry devices=pump-05 metric=vibration_rms unit=mm/s agg=trend group=device time=\"in "
     "the last hour\" 12-05T09:30..12-05T10:30"},
    {"is pump-02 vibration going up",
     "telemetry devices=pump-02 metric=vibration_rms unit=mm/s agg=trend group=device time=\"in "
     "the last hour\" 12-05T09:30..12-05T10:30"},
    {"temperature trend of conveyor-01 this week",
     "telemetry devices=conveyor-01 metric=temperature unit=°C agg=trend group=device time=\"this "
     "week\" 11-30T00:00..12-05T10:30"},
    {"how long was pump-01 above 65 °C today",
     "telemetry devices=pump-01 metric=temperature unit=°C agg=time_above group=device "
     "threshold>65 time=\"today\" 12-05T00:00..12-05T10:30"},
    {"how long was compressor-01 below 7 bar yesterday",
     "telemetry devices=compressor-01 metric=pressure unit=bar agg=time_below group=device "
     "threshold<7 time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"how long has conveyor-06 been over 2 mm/s since 6am",
     "telemetry devices=conveyor-06 metric=vibration_rms unit=mm/s agg=time_above group=device "
     "threshold>2 time=\"since 6 am\" 12-05T06:00..12-05T10:30"},
    {"top 3 pumps by vibration this week",
     "telemetry type=pump metric=vibration_rms unit=mm/s agg=mean group=device order=desc limit=3 "
     "time=\"this week\" 11-30T00:00..12-05T10:30"},
    {"bottom 2 conveyors by speed",
     "telemetry type=conveyor metric=rpm unit=rpm agg=last group=device order=asc limit=2 "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"lowest 3 pumps by flow today",
     "telemetry type=pump metric=flow unit=m³/h agg=min group=device order=asc limit=3 "
     "time=\"today\" 12-05T00:00..12-05T10:30"},
    {"the 3 hottest pumps",
     "telemetry type=pump metric=temperature unit=°C agg=last group=device order=desc limit=3 "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"the 3 hottest pumps yesterday",
     "telemetry type=pump metric=temperature unit=°C agg=max group=device order=desc limit=3 "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"which compressor had the highest pressure in the last 3 hours",
     "telemetry type=compressor metric=pressure unit=bar agg=max group=device order=desc limit=1 "
     "time=\"in the last 3 hours\" 12-05T07:30..12-05T10:30"},
    {"which pump is vibrating the most",
     "telemetry type=pump metric=vibration_rms unit=mm/s agg=last group=device order=desc limit=1 "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"coldest conveyor now",
     "telemetry type=conveyor metric=temperature unit=°C agg=last group=device order=asc limit=1 "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"which line had the highest average temperature yesterday",
     "telemetry metric=temperature unit=°C agg=mean group=asset:line order=desc limit=1 "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"average temperature per line today",
     "telemetry metric=temperature unit=°C agg=mean group=asset:line time=\"today\" "
     "12-05T00:00..12-05T10:30"},
    {"average speed of the conveyors per site yesterday",
     "telemetry type=conveyor metric=rpm unit=rpm agg=mean group=asset:site time=\"yesterday\" "
     "12-04T00:00..12-05T00:00"},
    {"max current by line in the last 24h",
     "telemetry metric=current unit=A agg=max group=asset:line time=\"in the last 24 h\" "
     "12-04T10:30..12-05T10:30"},
    {"pressure on north line 1 since 6am",
     "telemetry asset=north-line-1 metric=pressure unit=bar agg=mean group=none time=\"since 6 "
     "am\" 12-05T06:00..12-05T10:30"},
    {"whats the flow on south site today",
     "telemetry asset=south-site metric=flow unit=m³/h agg=mean group=none time=\"today\" "
     "12-05T00:00..12-05T10:30"},
    {"what is the temperature in north site",
     "telemetry asset=north-site metric=temperature unit=°C agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"average temp on north l2",
     "telemetry asset=north-line-2 metric=temperature unit=°C agg=mean group=none time=\"in the "
     "last 24 hours\" 12-04T10:30..12-05T10:30"},
    {"temperature of the compressor on north line 1",
     "telemetry devices=compressor-01 metric=temperature unit=°C agg=last group=device "
     "time=\"now\" 12-05T10:30..12-05T10:30"},
    {"what was the temperature of pump-01 yesterday",
     "telemetry devices=pump-01 metric=temperature unit=°C agg=mean group=device "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"temperature of pump-04 from 14:00 to 16:00 yesterday",
     "telemetry devices=pump-04 metric=temperature unit=°C agg=mean group=device time=\"from 14:00 "
     "to 16:00 yesterday\" 12-04T14:00..12-04T16:00"},
    {"vibration of pump-06 last friday",
     "telemetry devices=pump-06 metric=vibration_rms unit=mm/s agg=mean group=device time=\"last "
     "friday\" 12-04T00:00..12-05T00:00"},
    {"temperature of compressor-03 yesterday afternoon",
     "telemetry devices=compressor-03 metric=temperature unit=°C agg=mean group=device "
     "time=\"yesterday afternoon\" 12-04T12:00..12-04T18:00"},
    {"open alarms on north line 2",
     "alarms asset=north-line-2 agg=count group=none status=open time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"what alarmed most last week",
     "alarms agg=count group=none order=desc limit=1 status=any time=\"last week\" "
     "11-23T00:00..11-30T00:00"},
    {"which machine alarmed most last week",
     "alarms agg=count group=device order=desc limit=1 status=any time=\"last week\" "
     "11-23T00:00..11-30T00:00"},
    {"how many alarms did south line 1 have last week",
     "alarms asset=south-line-1 agg=count group=none status=any time=\"last week\" "
     "11-23T00:00..11-30T00:00"},
    {"which compressors have open alarms",
     "alarms type=compressor agg=count group=device status=open time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"alarms yesterday",
     "alarms agg=count group=none status=any time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"show active alarms",
     "alarms agg=count group=none status=active time=\"now\" 12-05T10:30..12-05T10:30"},
    {"current alarms on pump-03",
     "alarms devices=pump-03 agg=count group=none status=open time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"which site had the most alarms last week",
     "alarms agg=count group=asset:site order=desc limit=1 status=any time=\"last week\" "
     "11-23T00:00..11-30T00:00"},
    {"which machine is least healthy right now and why",
     "health agg=last group=device order=desc limit=1 time=\"right now\" 12-05T10:30..12-05T10:30"},
    {"the 2 least healthy machines",
     "health agg=last group=device order=desc limit=2 time=\"now\" 12-05T10:30..12-05T10:30"},
    {"what is the health of pump-04",
     "health devices=pump-04 agg=last group=device time=\"now\" 12-05T10:30..12-05T10:30"},
    {"which pump is in the worst condition",
     "health type=pump agg=last group=device order=desc limit=1 time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"healthiest compressor",
     "health type=compressor agg=last group=device order=asc limit=1 time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"hows compressor 2 doing",
     "health devices=compressor-02 agg=last group=device time=\"now\" 12-05T10:30..12-05T10:30"},
    {"which devices are offline",
     "offline agg=last group=device time=\"now\" 12-05T10:30..12-05T10:30"},
    {"is pump-08 down?",
     "offline devices=pump-08 agg=last group=device time=\"now\" 12-05T10:30..12-05T10:30"},
    {"any pumps offline?",
     "offline type=pump agg=last group=device time=\"now\" 12-05T10:30..12-05T10:30"},
    {"what's not reporting on south line 2",
     "offline asset=south-line-2 agg=last group=device time=\"now\" 12-05T10:30..12-05T10:30"},
    {"how many devices are offline",
     "offline agg=count group=none time=\"now\" 12-05T10:30..12-05T10:30"},
    {"when will pump-04 reach 90 °C",
     "forecast devices=pump-04 metric=temperature unit=°C agg=last group=device threshold>=90 "
     "time=\"in the next 24 hours\" 12-05T10:30..12-06T10:30"},
    {"will compressor-02 exceed 4 mm/s in the next 2 hours",
     "forecast devices=compressor-02 metric=vibration_rms unit=mm/s agg=last group=device "
     "threshold>4 time=\"in the next 2 hours\" 12-05T10:30..12-05T12:30"},
    {"will pump-03 go over 65 degrees tomorrow",
     "forecast devices=pump-03 metric=temperature unit=°C agg=last group=device threshold>65 "
     "time=\"tomorrow\" 12-05T10:30..12-07T00:00"},
    {"when will the vibration of conveyor-03 hit 2.5 mm/s",
     "forecast devices=conveyor-03 metric=vibration_rms unit=mm/s agg=last group=device "
     "threshold>=2.5 time=\"in the next 24 hours\" 12-05T10:30..12-06T10:30"},
    {"when will pump-04 reach 90 °C in the next hour",
     "forecast devices=pump-04 metric=temperature unit=°C agg=last group=device threshold>=90 "
     "time=\"in the next hour\" 12-05T10:30..12-05T11:30"},
};

TEST(ask_parse, demo_plant_questions_read_as_exact_plans) {
    static_assert(std::size(demo_cases) >= 80);
    for (const auto& c : demo_cases)
        EXPECT_EQ(read(c.question), c.plan) << c.question;
}

// The demo's press has a metric named "running", a word people use as a verb: it is the
// metric only when nothing else in the question says one.
TEST(ask_parse, a_metric_named_like_a_verb_gives_way_to_the_metric_the_question_says) {
    vocabulary v = demo_vocabulary();
    v.types.push_back({"press", "presses", {"oil_temperature", "running"}});
    v.metrics.push_back({"oil_temperature", "°C", {"oil temperature", "oil_temperature"}});
    v.metrics.push_back({"running", "", {"running"}});
    v.devices.push_back({"press-01", "press", "", {}, true});
    EXPECT_EQ(read("which pump is running hottest right now", v),
              "telemetry type=pump metric=temperature unit=°C agg=last group=device order=desc "
              "limit=1 time=\"right now\" 12-05T10:30..12-05T10:30");
    EXPECT_EQ(read("how long was compressor-02 running above 80 degrees today", v),
              "telemetry devices=compressor-02 metric=temperature unit=°C agg=time_above "
              "group=device threshold>80 time=\"today\" 12-05T00:00..12-05T10:30");
    EXPECT_EQ(read("are the compressors on south site running above 2500 rpm", v),
              "telemetry type=compressor asset=south-site metric=rpm unit=rpm agg=last "
              "group=device filter>2500 order=desc time=\"now\" 12-05T10:30..12-05T10:30");
    // "current" is a grammar word too ("the current value"); its own unit keeps it.
    EXPECT_EQ(read("which pumps had a current of at least 25 amps today", v),
              "telemetry type=pump metric=current unit=A agg=max group=device filter>=25 "
              "order=desc time=\"today\" 12-05T00:00..12-05T10:30");
    EXPECT_EQ(read("is press-01 running", v),
              "telemetry devices=press-01 metric=running agg=last group=device time=\"now\" "
              "12-05T10:30..12-05T10:30");
}

// More of how people ask: rankings said several ways, comparatives, units on their own,
// a day before clock times, verbs for measurements, misspelt grammar words.
const case_ more_cases[] = {
    {"which 2 pumps had the lowest pressure today?",
     "telemetry type=pump metric=pressure unit=bar agg=min group=device order=asc limit=2 "
     "time=\"today\" 12-05T00:00..12-05T10:30"},
    {"which 3 machines are least healthy now?",
     "health agg=last group=device order=desc limit=3 time=\"now\" 12-05T10:30..12-05T10:30"},
    {"rank the pumps by average flow in the last 6 hours",
     "telemetry type=pump metric=flow unit=m³/h agg=mean group=device order=desc time=\"in the "
     "last 6 hours\" 12-05T04:30..12-05T10:30"},
    {"list the conveyors by rpm from lowest to highest now",
     "telemetry type=conveyor metric=rpm unit=rpm agg=last group=device order=asc time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"which pump is the hottest right now?",
     "telemetry type=pump metric=temperature unit=°C agg=last group=device order=desc limit=1 "
     "time=\"right now\" 12-05T10:30..12-05T10:30"},
    {"which site ran hotter on average yesterday?",
     "telemetry metric=temperature unit=°C agg=mean group=asset:site order=desc limit=1 "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"what was the average pump pressure per line in the last hour?",
     "telemetry type=pump metric=pressure unit=bar agg=mean group=asset:line time=\"in the last "
     "hour\" 12-05T09:30..12-05T10:30"},
    {"what was the maximum compressor temperature per site in the last 24 hours?",
     "telemetry type=compressor metric=temperature unit=°C agg=max group=asset:site time=\"in the "
     "last 24 hours\" 12-04T10:30..12-05T10:30"},
    {"how many vibration readings did each line record in the last hour?",
     "telemetry metric=vibration_rms unit=mm/s agg=count group=asset:line time=\"in the last "
     "hour\" 12-05T09:30..12-05T10:30"},
    {"what was the average temperature of compressor-03 yesterday between 8 and 10?",
     "telemetry devices=compressor-03 metric=temperature unit=°C agg=mean group=device "
     "time=\"yesterday between 8 and 10\" 12-04T08:00..12-04T10:00"},
    {"what was the average temperature of pump-04 since yesterday 18:00?",
     "telemetry devices=pump-04 metric=temperature unit=°C agg=mean group=device time=\"since "
     "yesterday 18:00\" 12-04T18:00..12-05T10:30"},
    {"whats shaking the most on north line 2 right now",
     "telemetry asset=north-line-2 metric=vibration_rms unit=mm/s agg=last group=device order=desc "
     "limit=1 time=\"right now\" 12-05T10:30..12-05T10:30"},
    {"how fast is conveyor-03 going",
     "telemetry devices=conveyor-03 metric=rpm unit=rpm agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"how many bar is pump 5 putting out",
     "telemetry devices=pump-05 metric=pressure unit=bar agg=last group=device time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"how much is pump-02 pumping right now",
     "telemetry devices=pump-02 metric=flow unit=m³/h agg=last group=device time=\"right now\" "
     "12-05T10:30..12-05T10:30"},
    {"which compressor got hottest yesturday",
     "telemetry type=compressor metric=temperature unit=°C agg=max group=device order=desc limit=1 "
     "time=\"yesterday\" 12-04T00:00..12-05T00:00"},
    {"what was the top speed of conveyor-05 yesterday",
     "telemetry devices=conveyor-05 metric=rpm unit=rpm agg=max group=device time=\"yesterday\" "
     "12-04T00:00..12-05T00:00"},
    {"how cold did compressor-03 get in the last 24 hours",
     "telemetry devices=compressor-03 metric=temperature unit=°C agg=min group=device time=\"in "
     "the last 24 hours\" 12-04T10:30..12-05T10:30"},
    {"is pump-01 getting hotter over the last hour",
     "telemetry devices=pump-01 metric=temperature unit=°C agg=trend group=device time=\"over the "
     "last hour\" 12-05T09:30..12-05T10:30"},
    {"show me the pumps that went under 25 cubic meters an hour in the last 3 hours",
     "telemetry type=pump metric=flow unit=m³/h agg=min group=device filter<25 order=asc time=\"in "
     "the last 3 hours\" 12-05T07:30..12-05T10:30"},
    {"anything alarming on north line 1",
     "alarms asset=north-line-1 agg=count group=none status=open time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"which machine is in the worst shape on south line 2",
     "health asset=south-line-2 agg=last group=device order=desc limit=1 time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"how hot did each pump on north line 1 get today",
     "telemetry type=pump asset=north-line-1 metric=temperature unit=°C agg=max group=device "
     "time=\"today\" 12-05T00:00..12-05T10:30"},
    {"which machines have a health score above 0.3 now?",
     "health agg=last group=device filter>0.3 order=desc time=\"now\" 12-05T10:30..12-05T10:30"},
    {"when will the pressure of pump-05 drop below 3 bar?",
     "forecast devices=pump-05 metric=pressure unit=bar agg=last group=device threshold<3 "
     "time=\"in the next 24 hours\" 12-05T10:30..12-06T10:30"},
    {"which line has the most open alarms?",
     "alarms agg=count group=asset:line order=desc limit=1 status=open time=\"now\" "
     "12-05T10:30..12-05T10:30"},
    {"top 3 machines by number of alarms today",
     "alarms agg=count group=device order=desc limit=3 status=any time=\"today\" "
     "12-05T00:00..12-05T10:30"},
};

TEST(ask_parse, rankings_comparatives_and_plain_words_read_as_exact_plans) {
    for (const auto& c : more_cases)
        EXPECT_EQ(read(c.question), c.plan) << c.question;
}

TEST(ask_parse, the_contract_example_on_a_plant_with_a_line_named_line_2) {
    auto v = plain_lines_vocabulary();
    auto r = parse("which pumps on line 2 ran hotter than 80 °C yesterday?", v, {saturday_1030});
    ASSERT_TRUE(std::holds_alternative<plan>(r));
    EXPECT_EQ(
        plan_to_json(std::get<plan>(r), v.time_zone),
        R"({"kind":"telemetry","devices":[],"device_type":"pump","asset":"line-2",)"
        R"("metric":"temperature","unit":"°C","from":"2026-12-04T00:00:00+01:00",)"
        R"("to":"2026-12-05T00:00:00+01:00","time_text":"yesterday","aggregate":"max",)"
        R"("group_by":"device","asset_level":"","filter":{"op":">","value":80},)"
        R"("order":"desc","limit":null,"threshold":null,"alarm_status":"","source":"parser"})");
    // "line two", "L2" and "line-2" are the same asset.
    for (const char* q : {"which pumps on line two ran hotter than 80 degrees yesterday",
                          "which pumps on L2 ran hotter than 80 celsius yesterday",
                          "Which pumps on LINE-2 ran hotter than 80°C yesterday?"})
        EXPECT_EQ(read(q, v),
                  "telemetry type=pump asset=line-2 metric=temperature unit=°C agg=max "
                  "group=device filter>80 order=desc time=\"yesterday\" 12-04T00:00..12-05T00:00")
            << q;
    // One pump on line-1 has a sister: "the pump on line 1" is ambiguous, "the compressor" not.
    EXPECT_EQ(read("temperature of the compressor on line 1", v),
              "telemetry devices=compressor-01 metric=temperature unit=°C agg=last group=device "
              "time=\"now\" 12-05T10:30..12-05T10:30");
    EXPECT_EQ(read("temperature of the pump on line 1", v),
              "NOT: \"the pump\" could be any of 2 pumps on line-1 (pump-01 or pump-02): name "
              "one;");
}

TEST(ask_parse, numbers_in_words_and_glued_units) {
    EXPECT_EQ(read("temperature of pump four over the last three hours"),
              "telemetry devices=pump-04 metric=temperature unit=°C agg=mean group=device "
              "time=\"over the last 3 hours\" 12-05T07:30..12-05T10:30");
    EXPECT_EQ(read("which pumps are over 1400rpm"),
              "telemetry type=pump metric=rpm unit=rpm agg=last group=device filter>1400 "
              "order=desc time=\"now\" 12-05T10:30..12-05T10:30");
    EXPECT_EQ(read("top two compressors by amps in the last 24h"),
              "telemetry type=compressor metric=current unit=A agg=mean group=device order=desc "
              "limit=2 time=\"in the last 24 h\" 12-04T10:30..12-05T10:30");
    EXPECT_EQ(read("which pumps ran above 2.5mm/s yesterday"),
              "telemetry type=pump metric=vibration_rms unit=mm/s agg=max group=device filter>2.5 "
              "order=desc time=\"yesterday\" 12-04T00:00..12-05T00:00");
}

TEST(ask_parse, times_follow_the_zone_across_dst) {
    // Monday 2026-10-26 10:00 CET: Sunday had 25 hours.
    constexpr int64_t monday_after_dst = 1793005200000;
    auto r = parse("average temperature of pump-01 yesterday", demo(), {monday_after_dst});
    ASSERT_TRUE(std::holds_alternative<plan>(r));
    const auto& p = std::get<plan>(r);
    EXPECT_EQ(p.to_ms - p.from_ms, 25 * 3'600'000);
    EXPECT_EQ(read("average temperature of pump-01 yesterday", demo(), monday_after_dst),
              "telemetry devices=pump-01 metric=temperature unit=°C agg=mean group=device "
              "time=\"yesterday\" 10-25T00:00..10-26T00:00");
    // The same question read in UTC.
    EXPECT_EQ(
        read("average temperature of pump-01 yesterday", demo_vocabulary("UTC"), monday_after_dst),
        "telemetry devices=pump-01 metric=temperature unit=°C agg=mean group=device "
        "time=\"yesterday\" 10-25T00:00..10-26T00:00");
    auto utc = parse("average temperature of pump-01 yesterday", demo_vocabulary("UTC"),
                     {monday_after_dst});
    EXPECT_EQ(std::get<plan>(utc).to_ms - std::get<plan>(utc).from_ms, 24 * 3'600'000);
}

const case_ refused_cases[] = {
    {"what is the temperature of the pump",
     "NOT: \"the pump\" could be any of 8 pumps (pump-01, pump-02 ... pump-08): name one;"},
    {"coldest conveyor on north line 1 and the pump",
     "NOT: the question names several types (conveyor or pump): one type at a time;"},
    {"what is the pressure of conveyor-01",
     "NOT: conveyor-01 has no pressure (it has temperature, vibration, current or speed);"},
    {"pressure of the conveyors yesterday",
     "NOT: conveyors have no pressure (they have temperature, vibration, current or speed);"},
    {"pump 99 temperature", "NOT: there is no pump 99 (pumps: pump-01, pump-02 ... pump-08);"},
    {"what is the temperature on line 2",
     "NOT: \"line 2\" could be north-line-2 or south-line-2: name one;"},
    {"what is the temperature in east site", "NOT: \"east site\" is not an asset of the plant;"},
    {"what is the temperature of motor 3",
     "NOT: \"motor 3\" is not a device or an asset of the plant;"},
    {"what is the weather",
     "NOT: the question names no machine, line or measurement of the plant;"},
    {"which pumps ran hotter than 80 bar yesterday",
     "NOT: \"hotter than 80 bar\" does not fit temperature, which is in °C;"},
    {"which compressors are above 5 mm/s of pressure",
     "NOT: \"above 5 mm/s\" does not fit pressure, which is in bar;"},
    {"what is the 80th percentile of pump-01 temperature",
     "NOT: the 80th percentile is not one Clisonix computes (50th, 90th, 95th, 99th);"},
    {"temperature of line 9",
     "NOT: there is no line 9 (lines: north-line-1, north-line-2, north-line-3, south-line-1, "
     "south-line-2 or south-line-3);"},
    {"temperature of pump-01 this afternoon",
     "NOT: \"this afternoon\" has not begun yet (it is 10:30);"},
    {"temperature of pump-01 since lunch",
     "NOT: \"since lunch\" is not a time I can read: say \"since 06:00\", \"since Monday "
     "06:00\" or \"since yesterday\";"},
    {"the pumps",
     "NOT: which measurement? (current, flow, pressure, speed, temperature or vibration);"},
    {"what is the temperature of pump-01 at 80 bar",
     "NOT: \"80 bar\" does not fit anywhere in the question (a threshold needs above or below, "
     "a ranking \"top 80\");"},
    {"temperature and pressure of pump-01",
     "NOT: the question names several metrics (temperature or pressure): one at a time;"},
    {"temperature of pump-01 tomorrow",
     "NOT: \"tomorrow\" is in the future: only forecasts look ahead (\"will pump-01 exceed 80 "
     "°C in the next hour?\");"},
    {"temperature alarms on north line 1",
     "NOT: alarm questions cannot be narrowed to a measurement (temperature): ask for the "
     "alarms of a machine or a line;"},
    {"which pumps and compressors are hot",
     "NOT: the question names several types (pump or compressor): one type at a time;"},
    {"temperature of pump-01 on north line 2", "NOT: pump-01 is not on north-line-2;"},
    {"what is the temperature of the bearing on pump-01",
     "NOT: \"bearing\" is not a device, an asset or a measurement of the plant;"},
    {"temperature of pump-01 at the outlet",
     "NOT: \"outlet\" is not a device, an asset or a measurement of the plant;"},
    {"what is the bearing temperature of pump-01",
     "NOT: \"bearing temperature\" is not a measurement of pump-01;"},
    {"what was the temperature of pump-01 yesterday at 25:00",
     "NOT: \"25:00\" is not a time I can read here (say \"between 14:00 and 16:00 yesterday\" "
     "or \"since 06:00\");"},
    {"what was the pressure of pump-03 in °C today",
     "NOT: \"°C\" does not fit pressure, which is in bar;"},
    {"what is the temperature of east-line-1 now",
     "NOT: \"east line 1\" is not an asset of the plant;"},
    {"", "NOT: the question is empty;"},
    {"?!", "NOT: the question is empty;"},
    // Words that would change the answer, which the grammar does not read: refused, never
    // dropped (each of these was once answered over the whole range).
    {"average temperature of pump-01 excluding weekends",
     "NOT: \"excluding\": I cannot leave part of the data out or negate a condition; ask for "
     "the machines and the time range you want;"},
    {"average temperature of pump-01 except yesterday",
     "NOT: \"except\": I cannot leave part of the data out or negate a condition; ask for the "
     "machines and the time range you want;"},
    {"minimum temperature of pump-01 while running",
     "NOT: \"while\" is not a machine, line, measurement, time or word I know;"},
    {"maximum temperature of pump-01 during the night",
     "NOT: \"night\" is not a time I can read here: say \"between 08:00 and 10:00 this "
     "morning\" or \"since 22:00 yesterday\";"},
    {"average temperature of pump-01 per hour today",
     "NOT: \"per hour\" asks for a series, which the dashboard's chart and /api/v1/query "
     "(step) give; ask for one number over the range;"},
    {"temperature of pump-01 two days ago",
     "NOT: \"ago\" is not a time I can read: say \"yesterday\", \"on Monday\" or \"between "
     "08:00 and 10:00 on Monday\";"},
    {"average temperature of pump-01 on weekends",
     "NOT: \"weekends\" is not a machine, line, measurement, time or word I know;"},
};

TEST(ask_parse, ambiguous_or_unknown_questions_are_not_understood_with_the_reason) {
    for (const auto& c : refused_cases)
        EXPECT_EQ(read(c.question), c.plan) << c.question;
}

TEST(ask_parse, every_suggestion_is_a_question_the_parser_understands) {
    for (const auto& c : refused_cases) {
        auto r = parse(c.question, demo(), {saturday_1030});
        ASSERT_TRUE(std::holds_alternative<not_understood>(r)) << c.question;
        const auto& n = std::get<not_understood>(r);
        EXPECT_GE(n.suggestions.size(), 2u) << c.question;
        EXPECT_LE(n.suggestions.size(), 3u) << c.question;
        for (const auto& s : n.suggestions)
            EXPECT_TRUE(std::holds_alternative<plan>(parse(s, demo(), {saturday_1030})))
                << c.question << " suggested " << s;
    }
}

TEST(ask_parse, suggestions_follow_the_question) {
    auto r = parse("what is the temperature of the pump", demo(), {saturday_1030});
    EXPECT_EQ(std::get<not_understood>(r).suggestions,
              (std::vector<std::string>{"what is the temperature of pump-01 now?",
                                        "what is the average temperature of the pumps now?",
                                        "which pump had the highest temperature in the last 24 "
                                        "hours?"}));
    r = parse("what is the temperature on line 2", demo(), {saturday_1030});
    auto suggestions = std::get<not_understood>(r).suggestions;
    ASSERT_GE(suggestions.size(), 2u);
    EXPECT_EQ(suggestions[0],
              "what is the average temperature on north-line-2 in the last 24 hours?");
    EXPECT_EQ(suggestions[1],
              "what is the average temperature on south-line-2 in the last 24 hours?");
    r = parse("what is the pressure of conveyor-01", demo(), {saturday_1030});
    EXPECT_EQ(std::get<not_understood>(r).suggestions.front(),
              "what is the temperature of conveyor-01 now?");
    r = parse("temperature alarms on north line 1", demo(), {saturday_1030});
    EXPECT_EQ(std::get<not_understood>(r).suggestions.front(),
              "what are the open alarms on north-line-1?");
}

TEST(ask_parse, typos_are_corrected_only_towards_the_vocabulary) {
    EXPECT_EQ(read("temprature of compresor 3"),
              "telemetry devices=compressor-03 metric=temperature unit=°C agg=last group=device "
              "time=\"now\" 12-05T10:30..12-05T10:30");
    EXPECT_EQ(read("vibraton of the conveyers on south line 3 yesterday"),
              "telemetry type=conveyor asset=south-line-3 metric=vibration_rms unit=mm/s agg=mean "
              "group=none time=\"yesterday\" 12-04T00:00..12-05T00:00");
    // A word near no vocabulary word stays itself and is not understood.
    EXPECT_EQ(read("what is the humidty of pump-01"),
              "NOT: \"humidty\" is not a measurement of the plant (current, flow, pressure, speed, "
              "temperature or vibration);");
}

// Random sentences of the grammar's and the plant's words: parse() never fails to answer, and
// every plan it returns passes check() and names only the vocabulary's devices and metrics.
TEST(ask_parse, random_word_salads_are_answered_or_refused_never_half_read) {
    const std::vector<std::string> words = {
        "which",   "what",    "is",          "the",       "of",      "on",        "pump",
        "pumps",   "pump-04", "compressor",  "conveyors", "line",    "2",         "north",
        "l2",      "site",    "temperature", "vib",       "current", "amps",      "above",
        "below",   "than",    "hotter",      "80",        "°c",      "bar",       "mm/s",
        "top",     "3",       "most",        "least",     "healthy", "alarms",    "open",
        "offline", "down",    "when",        "will",      "reach",   "yesterday", "today",
        "since",   "monday",  "06:00",       "between",   "8",       "and",       "10",
        "this",    "morning", "last",        "week",      "in",      "hours",     "now",
        "average", "max",     "p95",         "how",       "long",    "per",       "by",
        "each",    "rank",    "trend",       "rising",    "25:00",   "-",         "?",
        "pump 99", "east"};
    uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<size_t>(state >> 33);
    };
    int plans = 0;
    for (int n = 0; n < 3000; ++n) {
        std::string q;
        size_t length = 1 + next() % 9;
        for (size_t k = 0; k < length; ++k)
            q += words[next() % words.size()] + " ";
        auto r = parse(q, demo(), {saturday_1030});
        if (auto* p = std::get_if<plan>(&r)) {
            ++plans;
            auto ok = check(*p, demo(), saturday_1030);
            EXPECT_TRUE(ok.ok()) << q << ": " << ok.error().message;
        } else {
            EXPECT_FALSE(std::get<not_understood>(r).reasons.empty()) << q;
        }
    }
    EXPECT_GT(plans, 50);  // the salad is not all refused: the test reaches the plan rules
}

}  // namespace
}  // namespace clisonix::ask::testing
